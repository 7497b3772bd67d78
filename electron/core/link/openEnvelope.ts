import { createDecipheriv } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { CodedError } from '../../../shared/errors';
import type { Envelope, EnvelopePlaintext } from '../../../shared/envelope';
import {
  ENVELOPE_INFO,
  ENVELOPE_V2_NONCE_BYTES,
  EnvelopePlaintextSchema,
  envelopeAad,
  envelopeV2ExporterContext,
  envelopeV2Info,
} from '../../../shared/envelope';

/** Epoch contexts kept opened (envelope v2): a relay starts a new one at most every 10 minutes per appliance. */
const EPOCH_CACHE_SIZE = 64;
const TAG_BYTES = 16;

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
 * v1: one encapsulation per envelope. v2: the epoch's context (its `info` binds tenant, appliance
 * and epoch id) exports the envelope's key from its seq; opened contexts are cached per epoch (the
 * newest `EPOCH_CACHE_SIZE`), and every envelope still opens alone and in any order.
 */
export async function createEnvelopeOpener(keys: EnvelopeOpenerKeys): Promise<EnvelopeOpener> {
  const recipientKey = await envelopeSuite.kem.deserializePrivateKey(keys.encryptionPrivateKey);
  const senderPublicKey = await envelopeSuite.kem.deserializePublicKey(keys.relayPublicKey);
  const info = utf8.encode(ENVELOPE_INFO);
  const epochs = new Map<string, Promise<{ export(context: ArrayBuffer, length: number): Promise<ArrayBuffer> }>>();

  const epochContext = (epoch: string, enc: string) => {
    // Keyed by enc as well: an envelope naming a cached epoch with another enc gets its own context.
    const cacheKey = `${epoch}.${enc}`;
    let ctx = epochs.get(cacheKey);
    if (!ctx) {
      ctx = envelopeSuite.createRecipientContext({
        recipientKey,
        senderPublicKey,
        enc: Buffer.from(enc, 'base64url'),
        info: utf8.encode(envelopeV2Info({ tenantId: keys.tenantId, applianceId: keys.applianceId, epoch })),
      });
      // A context that failed is not kept: a later envelope may carry the right one.
      ctx.catch(() => epochs.delete(cacheKey));
      epochs.set(cacheKey, ctx);
      if (epochs.size > EPOCH_CACHE_SIZE) epochs.delete(epochs.keys().next().value!);
    }
    return ctx;
  };

  const openV2 = async (seq: number, envelope: Envelope & { v: 2 }, aad: Uint8Array): Promise<Uint8Array> => {
    const ctx = await epochContext(envelope.epoch, envelope.enc);
    const exporterContext = envelopeV2ExporterContext(seq);
    const key = Buffer.from(await ctx.export(exporterContext.buffer.slice(0) as ArrayBuffer, 32));
    const ct = Buffer.from(envelope.ct, 'base64url');
    if (ct.length < ENVELOPE_V2_NONCE_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', key, ct.subarray(0, ENVELOPE_V2_NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    return Buffer.concat([decipher.update(ct.subarray(ENVELOPE_V2_NONCE_BYTES, ct.length - TAG_BYTES)), decipher.final()]);
  };

  return async (seq, envelope) => {
    const aad = utf8.encode(
      envelopeAad({ tenantId: keys.tenantId, applianceId: keys.applianceId, seq, receivedAt: envelope.receivedAt }),
    );
    let plaintext: ArrayBuffer | Uint8Array;
    try {
      if (envelope.v === 2) {
        plaintext = await openV2(seq, envelope, aad);
      } else {
        const ctx = await envelopeSuite.createRecipientContext({
          recipientKey,
          senderPublicKey,
          enc: Buffer.from(envelope.enc, 'base64url'),
          info,
        });
        plaintext = await ctx.open(Buffer.from(envelope.ct, 'base64url'), aad);
      }
    } catch {
      throw new CodedError(
        'ENVELOPE_INVALID',
        `Envelope ${seq} did not open: it was not sealed by the pinned relay key for this appliance and position.`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(plaintext as Uint8Array).toString('utf8'));
    } catch {
      throw new CodedError('ENVELOPE_INVALID', `Envelope ${seq} opened but does not hold JSON.`);
    }
    const parsed = EnvelopePlaintextSchema.safeParse(json);
    if (!parsed.success) throw new CodedError('ENVELOPE_INVALID', `Envelope ${seq} opened but its content has an unknown shape.`);
    return parsed.data;
  };
}
