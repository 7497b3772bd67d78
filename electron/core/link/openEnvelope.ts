import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { CodedError } from '../../../shared/errors';
import type { Envelope, EnvelopePlaintext } from '../../../shared/envelope';
import { ENVELOPE_INFO, EnvelopePlaintextSchema, envelopeAad } from '../../../shared/envelope';

/** The suite of DESIGN.md; never ChaCha20-Poly1305 (Electron's BoringSSL lacks it). */
export const envelopeSuite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
});

const utf8 = new TextEncoder();

export interface EnvelopeOpenerKeys {
  /** The appliance's X25519 private key, raw 32 bytes. */
  encryptionPrivateKey: Uint8Array;
  /** The relay's X25519 public key pinned at enrolment, raw 32 bytes: the only sender we accept. */
  relayPublicKey: Uint8Array;
  tenantId: string;
  applianceId: string;
}

export type EnvelopeOpener = (seq: number, envelope: Envelope) => Promise<EnvelopePlaintext>;

/**
 * Opens envelopes sealed by our relay to this appliance. HPKE Auth mode with the pinned relay key
 * proves the sender; the associated data proves the envelope was meant for this tenant, this
 * appliance and this queue position, so a replay to another appliance or seq fails to open.
 */
export async function createEnvelopeOpener(keys: EnvelopeOpenerKeys): Promise<EnvelopeOpener> {
  const recipientKey = await envelopeSuite.kem.deserializePrivateKey(keys.encryptionPrivateKey);
  const senderPublicKey = await envelopeSuite.kem.deserializePublicKey(keys.relayPublicKey);
  const info = utf8.encode(ENVELOPE_INFO);

  return async (seq, envelope) => {
    const aad = utf8.encode(
      envelopeAad({ tenantId: keys.tenantId, applianceId: keys.applianceId, seq, receivedAt: envelope.receivedAt }),
    );
    let plaintext: ArrayBuffer;
    try {
      const ctx = await envelopeSuite.createRecipientContext({
        recipientKey,
        senderPublicKey,
        enc: Buffer.from(envelope.enc, 'base64url'),
        info,
      });
      plaintext = await ctx.open(Buffer.from(envelope.ct, 'base64url'), aad);
    } catch {
      throw new CodedError(
        'ENVELOPE_INVALID',
        `Envelope ${seq} did not open: it was not sealed by the pinned relay key for this appliance and position.`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(plaintext).toString('utf8'));
    } catch {
      throw new CodedError('ENVELOPE_INVALID', `Envelope ${seq} opened but does not hold JSON.`);
    }
    const parsed = EnvelopePlaintextSchema.safeParse(json);
    if (!parsed.success) throw new CodedError('ENVELOPE_INVALID', `Envelope ${seq} opened but its content has an unknown shape.`);
    return parsed.data;
  };
}
