import { z } from 'zod';
import { AppErrorSchema } from '../errors';
import { accountsEvents, accountsMethods } from './accounts';
import { auditMethods } from './audit';
import { backupEvents, backupMethods } from './backup';
import { calendarEvents, calendarMethods } from './calendar';
import { Id, type MethodDef } from './common';
import { eventsMethods } from './events';
import { MessageStatusSchema, inboxMethods } from './inbox';
import { privacyEvents, privacyMethods } from './privacy';
import { RelayStatusSchema, WhatsAppStatusSchema, setupMethods } from './setup';
import { settingsMethods } from './settings';

/**
 * The one RPC contract between the renderer and the core, merged from one slice per feature
 * (`shared/rpc/<feature>.ts`). Each method names its input and output schemas, who may call it
 * and the audit action it records; the core's single `dispatch` enforces all of it for every
 * transport (Electron IPC, the web harness, tests).
 */
export * from './common';
export * from './accounts';
export * from './audit';
export * from './backup';
export * from './calendar';
export * from './events';
export * from './inbox';
export * from './privacy';
export * from './setup';
export * from './settings';

export const rpcContract = {
  ...accountsMethods,
  ...inboxMethods,
  ...setupMethods,
  ...auditMethods,
  ...backupMethods,
  ...privacyMethods,
  ...settingsMethods,
  ...calendarMethods,
  ...eventsMethods,
} as const satisfies Record<string, MethodDef>;

export type RpcContract = typeof rpcContract;
export type RpcMethod = keyof RpcContract;
export type RpcInput<M extends RpcMethod> = z.input<RpcContract[M]['input']>;
export type RpcOutput<M extends RpcMethod> = z.output<RpcContract[M]['output']>;

export const RPC_METHODS = Object.keys(rpcContract) as RpcMethod[];
export function isRpcMethod(name: string): name is RpcMethod {
  return Object.hasOwn(rpcContract, name);
}
/** The contract's access rules for one method, typed loosely for code that walks every method. */
export function methodDef(name: RpcMethod): MethodDef {
  return rpcContract[name] as MethodDef;
}

export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: z.infer<typeof AppErrorSchema> };
export const RpcResultSchema = z.union([
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({ ok: z.literal(false), error: AppErrorSchema }),
]);

/** Push events from the core to a connection's window. */
export const rpcEvents = {
  'message.received': z.object({ conversationId: Id, messageId: Id }),
  'message.statusChanged': z.object({ conversationId: Id, messageId: Id, status: MessageStatusSchema }),
  /** Something about messages already shown changed (a file finished downloading, a reaction); `messageId` null: several. */
  'message.updated': z.object({ conversationId: Id, messageId: Id.nullable() }),
  'conversation.updated': z.object({ conversationId: Id }),
  'relay.stateChanged': RelayStatusSchema,
  'whatsapp.stateChanged': WhatsAppStatusSchema,
  /** A quick reply was saved or removed; windows fetch the list again. */
  'quickReplies.changed': z.object({}),
  ...accountsEvents,
  ...backupEvents,
  ...privacyEvents,
  ...calendarEvents,
} as const;
export type RpcEvents = typeof rpcEvents;
export type RpcEventName = keyof RpcEvents;
export type RpcEventPayload<E extends RpcEventName> = z.output<RpcEvents[E]>;
export function isRpcEventName(name: string): name is RpcEventName {
  return Object.hasOwn(rpcEvents, name);
}
