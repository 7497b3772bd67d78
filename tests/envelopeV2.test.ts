/**
 * Envelope v2 across the real parts: the relay's sealer (relay/intake.ts, its own RFC 9180 code)
 * and the appliance's opener (electron/core/link/openEnvelope.ts, on @hpke/core). Each envelope
 * opens alone and in any order; a changed epoch id or seq does not open; v1 keeps opening.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelopeOpener } from '../electron/core/link/openEnvelope';
import { generateX25519KeyPair, x25519PrivateRaw } from '../relay/crypto/hpke';
import { createRecipients, parseWebhook, routeWebhook, sealPart, signMetaBody } from '../relay/intake';
import { batchWebhook, metaJson, textMessageChange } from '../relay/testing/signWebhook';
import type { Envelope } from '../shared/envelope';

const relay = generateX25519KeyPair();
const appliance = generateX25519KeyPair();
const tenantId = 'clinic-v2';
const applianceId = 'a-0123456789abcdef';

function part(text: string) {
  const raw = Buffer.from(metaJson(batchWebhook([textMessageChange({ phoneNumberId: '990001', wamid: `wamid.${text}`, text })])));
  return routeWebhook(raw, signMetaBody('v2-app-secret-000001', raw), parseWebhook(raw)!, () => tenantId).parts[0]!;
}

function sealer(version: 1 | 2, now: () => number = Date.now) {
  const prepare = createRecipients(relay, now);
  return (seq: number, text: string): Envelope => {
    const receivedAt = 1_760_000_000_000 + seq;
    const e = prepare({ id: applianceId, tenant_id: tenantId, encryption_public_key: appliance.publicRaw, envelope_version: version });
    const s = sealPart(e, part(text), seq, receivedAt);
    const enc = s.enc.toString('base64url');
    const ct = s.ct.toString('base64url');
    return s.epoch ? { v: 2, epoch: s.epoch, enc, ct, receivedAt } : { v: 1, enc, ct, receivedAt };
  };
}

const opener = () =>
  createEnvelopeOpener({ encryptionPrivateKey: x25519PrivateRaw(appliance.privateKey), relayPublicKey: relay.publicRaw, tenantId, applianceId });
const bodyOf = (p: { kind: string; body: string }) => (p.kind === 'meta' ? Buffer.from(p.body, 'base64url').toString('utf8') : p.body);

describe('envelope v2 between the relay and the appliance', () => {
  it('seals many envelopes under one epoch context; each opens alone, in any order, by a fresh opener too', async () => {
    const seal = sealer(2);
    const envelopes = [1, 2, 3, 4, 5].map((seq) => ({ seq, env: seal(seq, `text-${seq}`) }));
    expect(new Set(envelopes.map((e) => (e.env.v === 2 ? e.env.epoch : '')))).toHaveLength(1);
    const open = await opener();
    for (const { seq, env } of [...envelopes].reverse()) expect(bodyOf(await open(seq, env))).toContain(`text-${seq}`);
    // A single envelope, on an appliance that has seen no other of its epoch.
    const third = envelopes[2]!;
    expect(bodyOf(await (await opener())(third.seq, third.env))).toContain('text-3');
  });

  it('starts a new epoch after 10 minutes, and envelopes of both epochs open', async () => {
    let t = 0;
    const seal = sealer(2, () => t);
    const a = seal(1, 'early');
    t = 10 * 60_000;
    const b = seal(2, 'late');
    expect(a.v === 2 && b.v === 2 && a.epoch !== b.epoch).toBe(true);
    const open = await opener();
    expect(bodyOf(await open(2, b))).toContain('late');
    expect(bodyOf(await open(1, a))).toContain('early');
  });

  it('refuses an envelope whose epoch id, seq or ciphertext was changed', async () => {
    const seal = sealer(2);
    const env = seal(7, 'bound');
    const other = seal(8, 'other');
    if (env.v !== 2 || other.v !== 2) throw new Error('expected v2');
    const open = await opener();
    const forgedEpoch = { ...env, epoch: `${env.epoch.slice(0, -2)}${env.epoch.endsWith('AA') ? 'AB' : 'AA'}` };
    await expect(open(7, forgedEpoch)).rejects.toMatchObject({ code: 'ENVELOPE_INVALID' });
    await expect(open(8, env)).rejects.toMatchObject({ code: 'ENVELOPE_INVALID' });
    const ct = Buffer.from(env.ct, 'base64url');
    ct.writeUInt8(ct.readUInt8(ct.length - 1) ^ 1, ct.length - 1);
    await expect(open(7, { ...env, ct: ct.toString('base64url') })).rejects.toMatchObject({ code: 'ENVELOPE_INVALID' });
    // The untouched ones still open after the refusals (nothing bad was cached).
    expect(bodyOf(await open(7, env))).toContain('bound');
    expect(bodyOf(await open(8, other))).toContain('other');
  });

  it('keeps opening v1 envelopes', async () => {
    const env = sealer(1)(3, 'classic');
    expect(env.v).toBe(1);
    expect(bodyOf(await (await opener())(3, env))).toContain('classic');
  });
});
