import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppSecretsInputSchema } from '../../../shared/rpc';
import type { EnvelopePlaintext } from '../../../shared/envelope';
import { createTestDb, type TestDb } from '../testing/testDb';
import {
  ingestDelivery,
  recheckShelvedSignatures,
  shelvedSignatureFailures,
  signatureCounter,
  SIGNATURE_COUNTERS,
  SIGNATURE_MISMATCH,
} from './delivery';
import { appSecretKeys, verifyMetaSignature } from './metaSignature';

const vectors = JSON.parse(readFileSync(new URL('../../../tests/vectors/whatsapp/signature.json', import.meta.url), 'utf8')) as {
  vectors: { id: string; app_secret: string; raw_body_base64: string; expected_header: string }[];
};
const vector = vectors.vectors[0]!;
const RAW = Buffer.from(vector.raw_body_base64, 'base64');
const SECRET = vector.app_secret;
const OTHER = 'fedcba9876543210fedcba9876543210';
const vectorWamid = (JSON.parse(RAW.toString('utf8')) as { entry: { changes: { value: { messages: { id: string }[] } }[] }[] }).entry[0]!.changes[0]!.value.messages[0]!.id;
const sign = (body: Buffer, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('verifyMetaSignature', () => {
  it('accepts the reference vector over its exact bytes', () => {
    expect(verifyMetaSignature(appSecretKeys([SECRET]), RAW, vector.expected_header)).toBe(true);
  });

  it('refuses a body changed by one byte, a re-serialisation, a wrong secret and a malformed header', () => {
    const tampered = Buffer.from(RAW);
    const at = tampered.length - 5;
    tampered.writeUInt8(tampered.readUInt8(at) ^ 0x01, at);
    expect(verifyMetaSignature(appSecretKeys([SECRET]), tampered, vector.expected_header)).toBe(false);
    // Same JSON value, different bytes: Meta signs bytes, so this must fail.
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(RAW.toString('utf8')), null, 1));
    expect(verifyMetaSignature(appSecretKeys([SECRET]), reserialised, vector.expected_header)).toBe(false);
    expect(verifyMetaSignature(appSecretKeys([OTHER]), RAW, vector.expected_header)).toBe(false);
    expect(verifyMetaSignature(appSecretKeys([SECRET]), RAW, vector.expected_header.toUpperCase())).toBe(false);
    expect(verifyMetaSignature(appSecretKeys([SECRET]), RAW, vector.expected_header.slice(0, -2))).toBe(false);
    expect(verifyMetaSignature(appSecretKeys([]), RAW, vector.expected_header)).toBe(false);
  });

  it('accepts a signature under any active secret during a rotation, in either order', () => {
    const byNew = sign(RAW, OTHER);
    expect(verifyMetaSignature(appSecretKeys([OTHER, SECRET]), RAW, vector.expected_header)).toBe(true);
    expect(verifyMetaSignature(appSecretKeys([SECRET, OTHER]), RAW, byNew)).toBe(true);
    expect(verifyMetaSignature(appSecretKeys([SECRET]), RAW, byNew)).toBe(false);
  });

  it('keeps the secret out of anything that gets logged', () => {
    const keys = appSecretKeys([SECRET]);
    expect(JSON.stringify(keys)).not.toContain(SECRET);
    expect(String(keys[0])).not.toContain(SECRET);
  });
});

describe('the app secret as an admin types it', () => {
  it('takes one secret, or several separated by spaces or commas, and never echoes a bad one', () => {
    expect(AppSecretsInputSchema.parse(` ${SECRET}\n`)).toEqual([SECRET]);
    expect(AppSecretsInputSchema.parse(`${SECRET.toUpperCase()}, ${OTHER}`)).toEqual([SECRET, OTHER]);
    expect(AppSecretsInputSchema.parse(`${SECRET} ${SECRET}`)).toEqual([SECRET]);
    const bad = AppSecretsInputSchema.safeParse('not-the-secret-1234567890abcdefgh');
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).not.toContain('not-the-secret');
    expect(AppSecretsInputSchema.safeParse('   ').success).toBe(false);
    expect(AppSecretsInputSchema.safeParse([SECRET, OTHER, SECRET.replace('0', '1'), OTHER.replace('f', 'e')].join(' ')).success).toBe(false);
  });
});

describe('ingesting a delivery with the app secret set up', () => {
  let t: TestDb;
  beforeEach(() => {
    t = createTestDb();
  });
  afterEach(() => t.cleanup());

  const meta = (body: Buffer, signature: string): EnvelopePlaintext => ({ kind: 'meta', body: body.toString('base64url'), signature });
  const messages = () => t.db.prepare('SELECT wamid FROM messages').pluck().all() as string[];
  const deadLetters = () => t.db.prepare('SELECT relay_seq, reason FROM dead_letters ORDER BY id').all() as { relay_seq: number; reason: string }[];
  const options = (relaySeq: number, secrets: string[] | null) => ({
    relaySeq,
    receivedAt: 1_770_000_000_000,
    now: 1_770_000_000_500 + relaySeq,
    appSecrets: secrets ? appSecretKeys(secrets) : null,
  });

  it('stores a delivery Meta signed, and counts it as verified', () => {
    const result = ingestDelivery(t.db, meta(RAW, vector.expected_header), options(1, [SECRET]));
    expect(result).toMatchObject({ signature: 'verified', deadLettered: false });
    expect(result.newMessages).toHaveLength(1);
    expect(messages()).toHaveLength(1);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.verified)).toBe(1);
  });

  it('shelves a tampered body instead of showing it, once even when redelivered', () => {
    const forged = Buffer.from(RAW.toString('utf8').replace('Donnerstag', 'Freitag!!'), 'utf8');
    const first = ingestDelivery(t.db, meta(forged, vector.expected_header), options(7, [SECRET]));
    const again = ingestDelivery(t.db, meta(forged, vector.expected_header), options(7, [SECRET]));
    expect(first).toMatchObject({ signature: 'mismatch', deadLettered: true, newMessages: [] });
    expect(again.signature).toBe('mismatch');
    expect(messages()).toEqual([]);
    expect(t.db.prepare('SELECT count(*) FROM contacts').pluck().get()).toBe(0);
    expect(deadLetters()).toEqual([{ relay_seq: 7, reason: SIGNATURE_MISMATCH }]);
    expect(shelvedSignatureFailures(t.db, null)).toEqual({ count: 1, countSince: 1, lastAt: 1_770_000_000_507 });
    expect(shelvedSignatureFailures(t.db, 1_770_000_000_508).countSince).toBe(0);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.verified)).toBe(0);
  });

  it('shelves a genuine body when the appliance holds the wrong secret, and applies it once the right one is given', () => {
    const wrong = ingestDelivery(t.db, meta(RAW, vector.expected_header), options(3, [OTHER]));
    expect(wrong.signature).toBe('mismatch');
    expect(messages()).toEqual([]);

    // Still wrong: stays shelved.
    expect(recheckShelvedSignatures(t.db, appSecretKeys([OTHER]), 2)).toMatchObject({ applied: [], stillFailing: 1 });
    // Rotation list holding the right one: applied, shelf empty, counted as verified.
    const fixed = recheckShelvedSignatures(t.db, appSecretKeys([OTHER, SECRET]), 3);
    expect(fixed.stillFailing).toBe(0);
    expect(fixed.applied).toHaveLength(1);
    expect(fixed.applied[0]).toMatchObject({ relaySeq: 3, signature: 'verified', deadLettered: false });
    expect(messages()).toHaveLength(1);
    expect(shelvedSignatureFailures(t.db, null).count).toBe(0);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.verified)).toBe(1);
  });

  it('never applies a forgery on a re-check, whatever secrets are tried', () => {
    ingestDelivery(t.db, meta(RAW, sign(RAW, 'a-secret-only-the-forger-knows')), options(4, [SECRET]));
    expect(recheckShelvedSignatures(t.db, appSecretKeys([SECRET, OTHER]), 5)).toMatchObject({ applied: [], stillFailing: 1 });
    expect(messages()).toEqual([]);
  });

  it('counts a relay re-serialised delivery as relay-vouched, and applies it', () => {
    const result = ingestDelivery(t.db, { kind: 'relay', body: RAW.toString('utf8') }, options(5, [SECRET]));
    expect(result).toMatchObject({ signature: 'relay-vouched', deadLettered: false });
    expect(messages()).toHaveLength(1);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.relayVouched)).toBe(1);
  });

  it('behaves as before when no app secret is set up: unchecked, applied, nothing counted', () => {
    const forged = ingestDelivery(t.db, meta(RAW, sign(RAW, 'whoever')), options(6, null));
    expect(forged).toMatchObject({ signature: 'unchecked', deadLettered: false });
    expect(messages()).toHaveLength(1);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.verified)).toBe(0);
    expect(deadLetters()).toEqual([]);
  });

  describe('with only Meta-signed deliveries required', () => {
    const relay = (wamid: string): EnvelopePlaintext => ({
      kind: 'relay',
      body: RAW.toString('utf8').replace(/"id":"wamid\.[^"]+"/, `"id":"${wamid}"`),
    });
    const required = (relaySeq: number) => ({ ...options(relaySeq, [SECRET]), requireMetaSignature: true });

    it('shelves a relay re-serialised delivery as a signature mismatch, counted with the failures, never shown', () => {
      const first = ingestDelivery(t.db, relay('wamid.relay-1'), required(20));
      const again = ingestDelivery(t.db, relay('wamid.relay-1'), required(20));
      expect(first).toMatchObject({ signature: 'mismatch', deadLettered: true, newMessages: [] });
      expect(again.signature).toBe('mismatch');
      expect(messages()).toEqual([]);
      expect(t.db.prepare('SELECT count(*) FROM contacts').pluck().get()).toBe(0);
      expect(deadLetters()).toEqual([{ relay_seq: 20, reason: SIGNATURE_MISMATCH }]);
      expect(shelvedSignatureFailures(t.db, null).count).toBe(1);
      expect(signatureCounter(t.db, SIGNATURE_COUNTERS.relayVouched)).toBe(0);
      // A delivery Meta signed still goes through.
      expect(ingestDelivery(t.db, meta(RAW, vector.expected_header), required(21))).toMatchObject({ signature: 'verified', deadLettered: false });
      expect(messages()).toEqual([vectorWamid]);
    });

    it('applies relay deliveries as before when it is off, and has no effect without an app secret', () => {
      expect(ingestDelivery(t.db, relay('wamid.relay-2'), { ...options(22, [SECRET]), requireMetaSignature: false })).toMatchObject({
        signature: 'relay-vouched',
        deadLettered: false,
      });
      expect(ingestDelivery(t.db, relay('wamid.relay-3'), { ...options(23, null), requireMetaSignature: true })).toMatchObject({
        signature: 'unchecked',
        deadLettered: false,
      });
      expect(messages().sort()).toEqual(['wamid.relay-2', 'wamid.relay-3']);
      expect(deadLetters()).toEqual([]);
    });

    it('keeps them shelved on a re-check while it is on, and applies them in their original order once it is off', () => {
      ingestDelivery(t.db, relay('wamid.relay-b'), required(31));
      ingestDelivery(t.db, meta(RAW, sign(RAW, 'a-secret-only-the-forger-knows')), required(32));
      ingestDelivery(t.db, relay('wamid.relay-a'), required(33));
      expect(recheckShelvedSignatures(t.db, appSecretKeys([SECRET]), 40, true)).toMatchObject({ applied: [], stillFailing: 3 });
      expect(messages()).toEqual([]);

      const off = recheckShelvedSignatures(t.db, appSecretKeys([SECRET]), 41, false);
      expect(off.applied.map((r) => [r.relaySeq, r.signature])).toEqual([
        [31, 'relay-vouched'],
        [33, 'relay-vouched'],
      ]);
      expect(t.db.prepare('SELECT wamid FROM messages ORDER BY id').pluck().all()).toEqual(['wamid.relay-b', 'wamid.relay-a']);
      // The forged Meta one is still a forgery: it stays shelved.
      expect(off.stillFailing).toBe(1);
      expect(deadLetters()).toEqual([{ relay_seq: 32, reason: SIGNATURE_MISMATCH }]);
      expect(signatureCounter(t.db, SIGNATURE_COUNTERS.relayVouched)).toBe(2);
    });
  });

  it('rolls the count back with the delivery when the batch transaction fails', () => {
    expect(() =>
      t.db.transaction(() => {
        ingestDelivery(t.db, meta(RAW, vector.expected_header), options(8, [SECRET]));
        throw new Error('disk full');
      })(),
    ).toThrow('disk full');
    expect(messages()).toEqual([]);
    expect(signatureCounter(t.db, SIGNATURE_COUNTERS.verified)).toBe(0);
  });
});
