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

export const EnvelopeSchema = z.object({
  v: z.literal(1),
  /** HPKE encapsulated key (the ephemeral X25519 public key), base64url. */
  enc: Base64UrlSchema.length(43),
  /** AEAD ciphertext with its 16-byte tag, base64url. */
  ct: Base64UrlSchema.min(22),
  /** When the relay received the webhook, ms since epoch. Bound into the associated data. */
  receivedAt: EpochMsSchema,
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

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
