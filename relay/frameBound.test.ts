import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_INFO, envelopeAad, EnvelopePlaintextSchema } from '../shared/envelope';
import { deliverFrameBytes, MAX_DELIVER_FRAME_BYTES, MAX_ENVELOPE_PLAINTEXT_BYTES, MAX_WEBHOOK_BODY_BYTES } from '../shared/wire';
import { generateX25519KeyPair, openAuth, x25519PublicFromRaw } from './crypto/hpke';
import { deliverFrame } from './delivery';
import { createSealer, parseWebhook, routeWebhook, signMetaBody, type TenantPart } from './intake';
import { createTenant, envelopesAfter, issueEnrolmentCode, openStore, redeemEnrolmentCode, type Db } from './store';
import { textMessageChange } from './testing/signWebhook';

/**
 * The largest webhook the relay may accept, sealed by the real sealer and framed by the real
 * delivery code, must fit the frame limit the appliance sets from `MAX_DELIVER_FRAME_BYTES`; and
 * the bound must be tight (the worst case reaches it), or it would only hide a wrong derivation.
 */
const PHONE = '910000000000001';
const SECRET = 'frame-bound-app-secret-0001';
let dir: string;
let db: Db;
const relayKeys = generateX25519KeyPair();
const applianceKeys = generateX25519KeyPair();
let applianceId: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-frame-bound-'));
  db = openStore(join(dir, 'relay.sqlite'));
  createTenant(db, { id: 'clinic-big', phoneNumberIds: [PHONE], now: Date.now() });
  const { code } = issueEnrolmentCode(db, { tenantId: 'clinic-big', now: Date.now(), ttlMs: 60_000 });
  const enrolled = redeemEnrolmentCode(db, {
    code,
    signingPublicKey: Buffer.alloc(32, 1),
    encryptionPublicKey: applianceKeys.publicRaw,
    label: null,
    now: Date.now(),
  });
  applianceId = enrolled!.appliance.id;
});
afterAll(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A body of exactly `bytes` bytes: one text message for our clinic whose text is all `"` (two
 * bytes `\"` each in the body, four once a `relay` plaintext escapes them again), and, when
 * `mixed`, a small change for a number nobody owns, which forces the re-serialised `relay` form.
 */
let bodies = 0;
function bodyOfExactly(bytes: number, mixed: boolean): Buffer {
  bodies += 1;
  const build = (quotes: number, pad: string) => {
    const changes = [textMessageChange({ phoneNumberId: PHONE, wamid: `wamid.BIG-${bodies}`, text: '"'.repeat(quotes) + pad })];
    if (mixed) changes.push(textMessageChange({ phoneNumberId: '999', wamid: 'wamid.OTHER', text: 'x' }));
    return Buffer.from(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes }] }));
  };
  const base = build(0, '').length;
  const quotes = Math.floor((bytes - base) / 2);
  const body = build(quotes, 'a'.repeat(bytes - base - 2 * quotes));
  expect(body.length).toBe(bytes);
  return body;
}

const plaintextOf = (part: TenantPart) => EnvelopePlaintextSchema.parse(JSON.parse(Buffer.from(part.plaintext).toString('utf8')));

/** Routes, seals and frames one body exactly as the relay does; returns the frame text. */
function sealAndFrame(raw: Buffer): { part: TenantPart; frame: string } {
  const routed = routeWebhook(raw, signMetaBody(SECRET, raw), parseWebhook(raw)!, (p) => (p === PHONE ? 'clinic-big' : undefined));
  const part = routed.parts[0]!;
  const seal = createSealer({ db, relayKeyPair: relayKeys, dedupKey: Buffer.alloc(32, 9) });
  const receivedAt = Date.now();
  const [outcome] = db.transaction(() => {
    seal.begin();
    const out = seal.seal([part], receivedAt);
    seal.finish();
    return out;
  })();
  expect(outcome).toMatchObject({ outcome: 'queued' });
  const seq = (outcome as { seq: number }).seq;
  const row = envelopesAfter(db, applianceId, seq - 1, 1)[0]!;
  const frame = JSON.stringify(deliverFrame(row));
  // It is a real envelope: it opens for the appliance, bound to its seq.
  const opened = openAuth({
    recipient: applianceKeys,
    senderPublicKey: x25519PublicFromRaw(relayKeys.publicRaw),
    enc: row.enc,
    info: Buffer.from(ENVELOPE_INFO),
    aad: Buffer.from(envelopeAad({ tenantId: 'clinic-big', applianceId, seq, receivedAt })),
    ct: row.ct,
  });
  expect(opened.equals(part.plaintext)).toBe(true);
  expect(EnvelopePlaintextSchema.parse(JSON.parse(opened.toString('utf8'))).kind).toBe(part.kind);
  return { part, frame };
}

describe('the largest deliver frame', () => {
  it('holds the worst case: a re-serialised body at the cap, full of characters JSON escapes', () => {
    const { part, frame } = sealAndFrame(bodyOfExactly(MAX_WEBHOOK_BODY_BYTES, true));
    expect(part.kind).toBe('relay');
    expect(part.plaintext.length).toBe(Buffer.byteLength(JSON.stringify(plaintextOf(part))));
    expect(part.plaintext.length).toBeLessThanOrEqual(MAX_ENVELOPE_PLAINTEXT_BYTES);
    expect(frame.length).toBeLessThanOrEqual(deliverFrameBytes(part.plaintext.length));
    expect(frame.length).toBeLessThanOrEqual(MAX_DELIVER_FRAME_BYTES);
    // Tight: the worst case comes within 0.1 % of the bound (~2.67 × the body).
    expect(frame.length).toBeGreaterThan(0.999 * MAX_DELIVER_FRAME_BYTES);
    expect(frame.length / MAX_WEBHOOK_BODY_BYTES).toBeGreaterThan(2.66);
  });

  it('holds a body at the cap kept as Meta sent it (~1.78 × the body)', () => {
    const { part, frame } = sealAndFrame(bodyOfExactly(MAX_WEBHOOK_BODY_BYTES, false));
    expect(part.kind).toBe('meta');
    // Built without JSON.stringify, byte for byte what it would have written.
    expect(Buffer.from(part.plaintext).toString('utf8')).toBe(JSON.stringify(plaintextOf(part)));
    expect(frame.length).toBeLessThanOrEqual(deliverFrameBytes(part.plaintext.length));
    expect(frame.length / MAX_WEBHOOK_BODY_BYTES).toBeCloseTo(16 / 9, 2);
  });

  it('measures a re-serialisation that grows (exponent numbers), which the relay refuses instead of queueing', () => {
    // 4.5 MB of `1e20,` becomes 100000000000000000000 (21 digits) each: past the plaintext bound.
    const numbers = Array.from({ length: 900_000 }, () => '1e20').join(',');
    const change = JSON.stringify(textMessageChange({ phoneNumberId: PHONE, wamid: 'wamid.NUM', text: 'n' })).replace('"field"', `"n":[${numbers}],"field"`);
    const other = JSON.stringify(textMessageChange({ phoneNumberId: '999', wamid: 'wamid.OTHER', text: 'x' }));
    const raw = Buffer.from(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[${change},${other}]}]}`);
    expect(raw.length).toBeLessThan(5 * 1024 * 1024);
    const routed = routeWebhook(raw, signMetaBody(SECRET, raw), parseWebhook(raw)!, (p) => (p === PHONE ? 'clinic-big' : undefined));
    expect(routed.parts[0]!.plaintext.length).toBeGreaterThan(MAX_ENVELOPE_PLAINTEXT_BYTES);
  });
});
