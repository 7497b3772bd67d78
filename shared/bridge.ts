import { z } from 'zod';
import { RpcResultSchema } from './rpc';

/**
 * Frames of the renderer ⇄ core bridge. One shape for every hop that carries RPC calls as
 * messages: the web harness's loopback WebSocket and the Electron main ⇄ core utility process
 * port. Each hop parses what it receives with these schemas; the RPC params inside are parsed
 * again by the core's `dispatch`, so the bridge only checks the envelope.
 */
export const BRIDGE_PROTOCOL = 'clinic-inbox.v1';
/** The per-launch harness token travels as a second WebSocket subprotocol `t.<token>`. */
export const BRIDGE_TOKEN_PREFIX = 't.';

/**
 * `conn` names the connection a call belongs to where one hop carries several (Electron main ⇄ the
 * core process: one per window). The harness's socket is one connection and leaves it out.
 */
const ConnId = z.number().int().nonnegative().optional();

export const BridgeCallSchema = z.object({
  type: z.literal('call'),
  id: z.number().int().nonnegative(),
  conn: ConnId,
  method: z.string().min(1).max(100),
  params: z.unknown(),
});
export type BridgeCall = z.infer<typeof BridgeCallSchema>;

export const BridgeResultSchema = z.object({
  type: z.literal('result'),
  id: z.number().int().nonnegative(),
  result: RpcResultSchema,
});
export type BridgeResult = z.infer<typeof BridgeResultSchema>;

export const BridgeEventSchema = z.object({
  type: z.literal('event'),
  conn: ConnId,
  event: z.string().min(1).max(100),
  payload: z.unknown(),
});
export type BridgeEvent = z.infer<typeof BridgeEventSchema>;

/** What the core side sends back: call results and push events. */
export const BridgeDownSchema = z.discriminatedUnion('type', [BridgeResultSchema, BridgeEventSchema]);
export type BridgeDown = z.infer<typeof BridgeDownSchema>;

/** Main tells the core process that a window (its connection) is gone. */
export const BridgeDisconnectSchema = z.object({ type: z.literal('disconnect'), conn: z.number().int().nonnegative() });
export const BridgeUpSchema = z.discriminatedUnion('type', [BridgeCallSchema, BridgeDisconnectSchema]);
