import { z } from 'zod';
import { Base64UrlSchema, EpochMsSchema, IdSchema } from './encoding';

/**
 * The sealed form of one webhook (or one tenant's part of it) on its way from the relay to one
 * appliance. HPKE (RFC 9180) in Auth mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
 * one fresh encapsulation per envelope, the relay's static X25519 key as the authenticated sender.
 * The appliance pinned that key at enrolment, so only its relay can produce an envelope it opens.
 */
export const HPKE_KEM_ID = 0x0020; // DHKEM(X25519, HKDF-SHA256)
export const HPKE_KDF_ID = 0x0001; // HKDF-SHA256
export const HPKE_AEAD_ID = 0x0002; // AES-256-GCM
export const HPKE_MODE_AUTH = 0x02;

/** HPKE `info`: separates this use of the keys from every other. */
export const ENVELOPE_INFO = 'clinic-inbox/envelope/v1';

export const EnvelopeV1Schema = z.object({
  v: z.literal(1),
  /** HPKE encapsulated key (the ephemeral X25519 public key), base64url. */
  enc: Base64UrlSchema.length(43),
  /** AEAD ciphertext with its 16-byte tag, base64url. */
  ct: Base64UrlSchema.min(22),
  /** When the relay received the webhook, ms since epoch. Bound into the associated data. */
  receivedAt: EpochMsSchema,
});

/**
 * Envelope v2 (announced by the appliance when it connects, `ENVELOPE_VERSIONS_HEADER`): the relay
 * keeps one HPKE Auth sender context per appliance per epoch (at most `EPOCH_MAX_AGE_MS` or
 * `EPOCH_MAX_ENVELOPES`), whose `info` binds tenant, appliance and epoch id. Each envelope carries
 * its epoch's `enc` and id and is sealed with AES-256-GCM under
 * `export("clinic-inbox envelope" ‖ uint64be(seq), 32)`, with a random 12-byte nonce in front of
 * the ciphertext (a seq given back by a rolled-back commit is sealed again under the same key, so a
 * fixed nonce would be reused) and the same associated data as v1. Every envelope opens alone and
 * in any order; the appliance caches opened contexts per epoch.
 */
export const EnvelopeV2Schema = z.object({
  v: z.literal(2),
  /** The epoch id: 16 random bytes, base64url. */
  epoch: Base64UrlSchema.length(22),
  /** The epoch's HPKE encapsulated key, base64url. */
  enc: Base64UrlSchema.length(43),
  /** 12-byte nonce ‖ AES-256-GCM ciphertext with its tag, base64url. */
  ct: Base64UrlSchema.min(38),
  receivedAt: EpochMsSchema,
});

export const EnvelopeSchema = z.discriminatedUnion('v', [EnvelopeV1Schema, EnvelopeV2Schema]);
export type Envelope = z.infer<typeof EnvelopeSchema>;

export const ENVELOPE_V2_LABEL = 'clinic-inbox/envelope/v2';
export const EPOCH_MAX_AGE_MS = 10 * 60_000;
export const EPOCH_MAX_ENVELOPES = 10_000;
export const ENVELOPE_V2_NONCE_BYTES = 12;

/** HPKE `info` of an epoch: tenant, appliance and epoch id, so a context serves one appliance's epoch only. */
export function envelopeV2Info(binding: { tenantId: string; applianceId: string; epoch: string }): string {
  return JSON.stringify([ENVELOPE_V2_LABEL, binding.tenantId, binding.applianceId, binding.epoch]);
}

/** The exporter context of one envelope: "clinic-inbox envelope" ‖ uint64be(seq). */
export function envelopeV2ExporterContext(seq: number): Uint8Array {
  const label = 'clinic-inbox envelope'; // ASCII: one byte per character
  const out = new Uint8Array(label.length + 8);
  for (let i = 0; i < label.length; i += 1) out[i] = label.charCodeAt(i);
  new DataView(out.buffer).setBigUint64(label.length, BigInt(seq));
  return out;
}

export interface EnvelopeBinding {
  tenantId: string;
  applianceId: string;
  seq: number;
  receivedAt: number;
}

/**
 * The associated data of an envelope. It binds the envelope to one tenant, one appliance and one
 * queue position, so a captured envelope cannot be replayed to another appliance or another seq.
 * JSON of a fixed-order array is unambiguous without any escaping rules of our own.
 */
export function envelopeAad(binding: EnvelopeBinding): string {
  return JSON.stringify([
    ENVELOPE_INFO,
    binding.tenantId,
    binding.applianceId,
    binding.seq,
    binding.receivedAt,
  ]);
}

/**
 * What is inside an envelope.
 * - `meta`: the whole webhook belonged to this tenant: the raw body exactly as Meta sent it
 *   (base64url of the bytes) and its `X-Hub-Signature-256` header, so an appliance that holds the
 *   app secret can check Meta's HMAC itself.
 * - `relay`: the POST mixed several tenants; this tenant's changes were re-serialised by the relay
 *   and are vouched for by the relay alone (the HPKE sender authentication).
 */
export const EnvelopePlaintextSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('meta'),
    body: Base64UrlSchema,
    signature: z.string().regex(/^sha256=[0-9a-f]{64}$/),
  }),
  z.object({
    kind: z.literal('relay'),
    /** A webhook body (`{"object":…,"entry":[…]}`) holding only this tenant's changes, as JSON text. */
    body: z.string(),
  }),
]);
export type EnvelopePlaintext = z.infer<typeof EnvelopePlaintextSchema>;

export const TenantIdSchema = IdSchema;
export const ApplianceIdSchema = IdSchema;
