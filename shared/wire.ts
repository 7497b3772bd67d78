import { z } from 'zod';
import { Base64UrlSchema, EpochMsSchema, IdSchema } from './encoding';
import { EnvelopeSchema } from './envelope';
import { ErrorCodeSchema } from './errors';

/**
 * The relay ⇄ appliance protocol: JSON text frames over one WebSocket at `/v1/appliance`.
 * Authentication happens on the HTTP upgrade (see `wsAuthPayload`), never inside the socket.
 */
export const APPLIANCE_WS_PATH = '/v1/appliance';

/** Headers of the upgrade request; no secret travels, only a signature over fresh values. */
export const WS_AUTH_HEADERS = {
  applianceId: 'x-clinic-appliance',
  timestamp: 'x-clinic-timestamp',
  nonce: 'x-clinic-nonce',
  signature: 'x-clinic-signature',
} as const;

/**
 * The envelope versions an appliance opens, announced on the upgrade ("1,2"). Absent means v1
 * only, which every appliance opens; the relay seals v2 only to one that announced it.
 */
export const ENVELOPE_VERSIONS_HEADER = 'x-clinic-envelope-versions';

/** How far the upgrade timestamp may be from the relay's clock. */
export const WS_AUTH_MAX_SKEW_MS = 60_000;

/** The exact bytes (as UTF-8 text) the appliance signs with its Ed25519 device key to open a socket. */
export function wsAuthPayload(applianceId: string, timestamp: number, nonce: string): string {
  return JSON.stringify(['clinic-inbox/ws-auth/v1', 'GET', APPLIANCE_WS_PATH, applianceId, timestamp, nonce]);
}

/** WebSocket close codes the relay uses (4000–4999 is the application range). */
export const WS_CLOSE = {
  badFrame: 4400,
  revoked: 4403,
  replaced: 4409,
  /** Two connections keep taking over one appliance identity: both are held off for a while. */
  conflict: 4410,
  shuttingDown: 1001,
} as const;

export const BacklogSchema = z.object({
  /** Envelopes waiting at the relay for this appliance (sent but unacknowledged included). */
  queued: z.number().int().nonnegative(),
  /** Receive time of the oldest waiting envelope, or null when nothing waits. */
  oldestAt: EpochMsSchema.nullable(),
});
export type Backlog = z.infer<typeof BacklogSchema>;

/** A statement by the appliance about its local audit log, signed with its device key. */
export const CheckpointSchema = z.object({
  /** Sequence number of the newest audit entry covered. */
  seq: z.number().int().nonnegative(),
  /** Hash of that entry (hex SHA-256), the head of the chain. */
  headHash: z.string().regex(/^[0-9a-f]{64}$/),
  /** When the appliance made the checkpoint, ms since epoch. */
  at: EpochMsSchema,
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

export function checkpointPayload(applianceId: string, checkpoint: Checkpoint): string {
  return JSON.stringify(['clinic-inbox/checkpoint/v1', applianceId, checkpoint.seq, checkpoint.headHash, checkpoint.at]);
}

export const SignedCheckpointSchema = z.object({
  checkpoint: CheckpointSchema,
  /** Ed25519 signature over `checkpointPayload`, base64url. */
  signature: Base64UrlSchema.length(86),
});
export type SignedCheckpoint = z.infer<typeof SignedCheckpointSchema>;

export const RelayFrameSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    tenantId: IdSchema,
    applianceId: IdSchema,
    /** How many deliveries the relay keeps unacknowledged at once. */
    window: z.number().int().positive(),
    backlog: BacklogSchema,
  }),
  z.object({ type: z.literal('deliver'), seq: z.number().int().positive(), envelope: EnvelopeSchema }),
  z.object({ type: z.literal('backlog'), backlog: BacklogSchema }),
  z.object({ type: z.literal('checkpoint.accepted'), seq: z.number().int().nonnegative() }),
  z.object({ type: z.literal('checkpoint.latest'), latest: SignedCheckpointSchema.nullable() }),
  z.object({ type: z.literal('error'), code: ErrorCodeSchema, message: z.string() }),
]);
export type RelayFrame = z.infer<typeof RelayFrameSchema>;

/**
 * The largest webhook body the relay may accept (`RELAY_BODY_LIMIT_BYTES` cannot exceed it). Meta
 * batches are "up to a few MB"; whatever the relay accepts must fit the appliance's frame limit
 * below, or one big envelope would block its queue until it expires.
 */
export const MAX_WEBHOOK_BODY_BYTES = 8 * 1024 * 1024;

/**
 * The largest envelope plaintext (JSON text of `EnvelopePlaintext`) the relay seals. A `meta`
 * plaintext is the body as base64url plus a fixed frame: about 4/3 of the body. A `relay` plaintext
 * holds a re-serialised body as a JSON string: escaping doubles it at worst (every `"` and `\` of
 * it gains a backslash; re-serialised JSON holds no raw control characters), and re-serialising
 * never lengthens a body in the shapes Meta sends (it drops Meta's `\/` and `\uXXXX` escapes).
 * Only exponent numbers grow (`1e20` → 21 digits), so the relay measures every plaintext and
 * refuses (413) a body whose part would exceed this rather than queue a frame no appliance takes.
 */
export const MAX_ENVELOPE_PLAINTEXT_BYTES = 2 * MAX_WEBHOOK_BODY_BYTES + 1024;

/** AES-256-GCM appends a 16-byte tag to the ciphertext. */
const AEAD_TAG_BYTES = 16;

/**
 * The exact length of the longest `deliver` frame (JSON text) whose envelope holds a plaintext of
 * this many bytes: the frame with the widest seq and receive time a frame can carry, plus the
 * ciphertext (plaintext + tag) as unpadded base64url.
 */
export function deliverFrameBytes(plaintextBytes: number): number {
  const widest = Number.MAX_SAFE_INTEGER;
  // The wider of the two versions: v2 adds its epoch id and a 12-byte nonce in front of the ciphertext.
  const v1: RelayFrame = { type: 'deliver', seq: widest, envelope: { v: 1, enc: 'A'.repeat(43), ct: '', receivedAt: widest } };
  const v2: RelayFrame = { type: 'deliver', seq: widest, envelope: { v: 2, epoch: 'A'.repeat(22), enc: 'A'.repeat(43), ct: '', receivedAt: widest } };
  return Math.max(
    JSON.stringify(v1).length + Math.ceil(((plaintextBytes + AEAD_TAG_BYTES) * 4) / 3),
    JSON.stringify(v2).length + Math.ceil(((12 + plaintextBytes + AEAD_TAG_BYTES) * 4) / 3),
  );
}

/**
 * The largest frame the relay ever sends (a `deliver` of the largest plaintext; every other frame
 * is small). The appliance sets its WebSocket `maxPayload` to this: a lower limit would close the
 * socket (1009) on an envelope the relay accepted, and the same seq would come first on every
 * reconnect. About 2.67 × `MAX_WEBHOOK_BODY_BYTES`, i.e. ~21.3 MiB.
 */
export const MAX_DELIVER_FRAME_BYTES = deliverFrameBytes(MAX_ENVELOPE_PLAINTEXT_BYTES);

export const ApplianceFrameSchema = z.discriminatedUnion('type', [
  /** Sent only after the delivery with this seq is committed on the appliance. */
  z.object({ type: z.literal('ack'), seq: z.number().int().positive() }),
  z.object({ type: z.literal('checkpoint'), signed: SignedCheckpointSchema }),
  z.object({ type: z.literal('checkpoint.get') }),
]);
export type ApplianceFrame = z.infer<typeof ApplianceFrameSchema>;
