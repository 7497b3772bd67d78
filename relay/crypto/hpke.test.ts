import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import {
  deriveX25519KeyPair,
  generateX25519KeyPair,
  setupRecipient,
  setupSender,
  authStaticDh,
  sealAuth,
  sealFirst,
  openAuth,
  x25519PrivateRaw,
} from './hpke';

interface Vector {
  mode: number;
  aead_id: number;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  ikmS?: string;
  pkSm?: string;
  skSm?: string;
  enc: string;
  shared_secret: string;
  key_schedule_context: string;
  secret: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  encryptions: { sequence_number: number; pt: string; aad: string; nonce: string; ct: string }[];
}

const vectors = (
  JSON.parse(readFileSync(new URL('../../tests/vectors/hpke-rfc9180-x25519-aes128gcm.json', import.meta.url), 'utf8')) as { vectors: Vector[] }
).vectors;
const hex = (s: string) => Buffer.from(s, 'hex');

describe('HPKE against the RFC 9180 A.1 vectors (X25519, HKDF-SHA256, AES-128-GCM)', () => {
  it('has both the Base and the Auth vector', () => {
    expect(vectors.map((v) => v.mode).sort()).toEqual([0, 2]);
  });

  for (const v of vectors) {
    describe(`mode ${v.mode}`, () => {
      const eph = deriveX25519KeyPair(hex(v.ikmE));
      const rec = deriveX25519KeyPair(hex(v.ikmR));
      const snd = v.ikmS ? deriveX25519KeyPair(hex(v.ikmS)) : undefined;

      it('derives every key pair exactly', () => {
        expect(eph.publicRaw.toString('hex')).toBe(v.pkEm);
        expect(x25519PrivateRaw(eph.privateKey).toString('hex')).toBe(v.skEm);
        expect(rec.publicRaw.toString('hex')).toBe(v.pkRm);
        expect(x25519PrivateRaw(rec.privateKey).toString('hex')).toBe(v.skRm);
        if (snd) {
          expect(snd.publicRaw.toString('hex')).toBe(v.pkSm);
          expect(x25519PrivateRaw(snd.privateKey).toString('hex')).toBe(v.skSm);
        }
      });

      it('sets up the sender and the recipient with the exact key schedule', () => {
        const s = setupSender({
          aead: 'aes-128-gcm',
          recipientPublicKey: rec.publicKey,
          info: hex(v.info),
          ephemeralKeyPair: eph,
          ...(snd ? { senderKeyPair: snd } : {}),
        });
        expect(s.enc.toString('hex')).toBe(v.enc);
        const r = setupRecipient({
          aead: 'aes-128-gcm',
          recipientKeyPair: rec,
          enc: s.enc,
          info: hex(v.info),
          ...(snd ? { senderPublicKey: snd.publicKey } : {}),
        });
        const contexts = [s.context, r];
        if (snd) {
          // The relay caches DH(sender static, recipient static); the result must be identical.
          const cached = setupSender({
            aead: 'aes-128-gcm',
            recipientPublicKey: rec.publicKey,
            info: hex(v.info),
            ephemeralKeyPair: eph,
            senderKeyPair: snd,
            staticDh: authStaticDh(snd, rec.publicKey),
          });
          contexts.push(cached.context);
        }
        for (const ctx of contexts) {
          expect(ctx.sharedSecret.toString('hex')).toBe(v.shared_secret);
          expect(ctx.schedule.keyScheduleContext.toString('hex')).toBe(v.key_schedule_context);
          expect(ctx.schedule.secret.toString('hex')).toBe(v.secret);
          expect(ctx.schedule.key.toString('hex')).toBe(v.key);
          expect(ctx.schedule.baseNonce.toString('hex')).toBe(v.base_nonce);
          expect(ctx.schedule.exporterSecret.toString('hex')).toBe(v.exporter_secret);
        }
      });

      it('produces and opens every listed encryption at its sequence number', () => {
        const s = setupSender({
          aead: 'aes-128-gcm',
          recipientPublicKey: rec.publicKey,
          info: hex(v.info),
          ephemeralKeyPair: eph,
          ...(snd ? { senderKeyPair: snd } : {}),
        });
        const r = setupRecipient({
          aead: 'aes-128-gcm',
          recipientKeyPair: rec,
          enc: s.enc,
          info: hex(v.info),
          ...(snd ? { senderPublicKey: snd.publicKey } : {}),
        });
        const bySeq = new Map(v.encryptions.map((e) => [e.sequence_number, e]));
        const last = Math.max(...bySeq.keys());
        expect(v.encryptions.length).toBeGreaterThan(1);
        for (let seq = 0; seq <= last; seq += 1) {
          const e = bySeq.get(seq);
          // Sequence numbers the vectors skip still advance the context, exactly as the RFC lists them.
          const pt = e ? hex(e.pt) : Buffer.from('skipped');
          const aad = e ? hex(e.aad) : Buffer.alloc(0);
          const ct = s.context.seal(pt, aad);
          const opened = r.open(ct, aad);
          expect(opened.equals(pt)).toBe(true);
          if (e) expect(ct.toString('hex')).toBe(e.ct);
        }
      });
    });
  }
});

describe('HPKE interoperability with @hpke/core (AES-256-GCM, Auth mode)', () => {
  it('seals with ours and opens with @hpke/core, and a wrong sender key fails', async () => {
    const relay = generateX25519KeyPair();
    const appliance = generateX25519KeyPair();
    const info = Buffer.from('clinic-inbox/envelope/v1');
    const aad = Buffer.from('["binding",1]');
    const plaintext = Buffer.from(JSON.stringify({ hello: 'Grüße \u2603' }));
    const { enc, ct } = sealAuth({ recipientPublicKey: appliance.publicKey, sender: relay, info, aad, plaintext });

    const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const toAb = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    const recipientKey = await suite.kem.importKey('raw', toAb(x25519PrivateRaw(appliance.privateKey)), false);
    const senderPublicKey = await suite.kem.importKey('raw', toAb(relay.publicRaw), true);
    const ctx = await suite.createRecipientContext({ recipientKey, enc: toAb(enc), senderPublicKey, info: toAb(info) });
    const opened = Buffer.from(await ctx.open(toAb(ct), toAb(aad)));
    expect(opened.equals(plaintext)).toBe(true);

    const impostor = generateX25519KeyPair();
    const wrongSender = await suite.kem.importKey('raw', toAb(impostor.publicRaw), true);
    const ctx2 = await suite.createRecipientContext({ recipientKey, enc: toAb(enc), senderPublicKey: wrongSender, info: toAb(info) });
    await expect(ctx2.open(toAb(ct), toAb(aad))).rejects.toThrow();
  });

  it('opens what @hpke/core seals, and refuses a changed aad', async () => {
    const relay = generateX25519KeyPair();
    const appliance = generateX25519KeyPair();
    const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const toAb = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    const info = Buffer.from('i');
    const aad = Buffer.from('a');
    const recipientPublicKey = await suite.kem.importKey('raw', toAb(appliance.publicRaw), true);
    const senderKey = await suite.kem.deserializePrivateKey(toAb(x25519PrivateRaw(relay.privateKey)));
    const senderPub = await suite.kem.importKey('raw', toAb(relay.publicRaw), true);
    const sender = await suite.createSenderContext({ recipientPublicKey, senderKey: { privateKey: senderKey, publicKey: senderPub }, info: toAb(info) });
    const ct = Buffer.from(await sender.seal(toAb(Buffer.from('payload')), toAb(aad)));
    const enc = Buffer.from(sender.enc);
    const opened = openAuth({ recipient: appliance, senderPublicKey: relay.publicKey, enc, info, aad, ct });
    expect(opened.toString()).toBe('payload');
    expect(() => openAuth({ recipient: appliance, senderPublicKey: relay.publicKey, enc, info, aad: Buffer.from('b'), ct })).toThrow();
  });

  it('opens the relay split seal (encapsulation ahead, AEAD with the seq-bound aad later) with @hpke/core', async () => {
    const relay = generateX25519KeyPair();
    const appliance = generateX25519KeyPair();
    const info = Buffer.from('clinic-inbox/envelope/v1');
    const { enc, context } = setupSender({ aead: 'aes-256-gcm', recipientPublicKey: appliance.publicKey, senderKeyPair: relay, info });
    const aad = Buffer.from('["clinic-inbox/envelope/v1","t","a",7,1]');
    const ct = sealFirst('aes-256-gcm', new Uint8Array(context.schedule.key), new Uint8Array(context.schedule.baseNonce), Buffer.from('{"kind":"relay"}'), aad);
    const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const toAb = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    const ctx = await suite.createRecipientContext({
      recipientKey: await suite.kem.importKey('raw', toAb(x25519PrivateRaw(appliance.privateKey)), false),
      enc: toAb(enc),
      senderPublicKey: await suite.kem.importKey('raw', toAb(relay.publicRaw), true),
      info: toAb(info),
    });
    expect(Buffer.from(await ctx.open(toAb(ct), toAb(aad))).toString()).toBe('{"kind":"relay"}');
  });
});
