// Where the microseconds of one webhook go on the relay's path, step by step, in this process
// (no HTTP, no disk): verify, nesting scan, parse, route (with dedup digests), seal v1 / v2,
// dedup keys. `node --import tsx bench/relayPath.ts`. Each figure is the mean of many runs.
import { randomBytes } from 'node:crypto';
import { generateX25519KeyPair } from '../relay/crypto/hpke';
import { createDedupHasher, createRecipients, nestingDepthExceeds, parseWebhook, routeWebhook, sealPart, signMetaBody, verifyMetaSignature } from '../relay/intake';
import { metaJson, textMessageWebhook } from '../relay/testing/signWebhook';

const SECRET = 'bench-app-secret-0123456789abcdef';
const raw = Buffer.from(metaJson(textMessageWebhook({ phoneNumberId: '120000000000001', wamid: 'wamid.HBgLNDkxNTEyMzQ1Njc4FQIAEhggQTdCRkE5', text: 'Guten Tag, ich hätte gern einen Termin nächste Woche.' })));
const sig = signMetaBody(SECRET, raw);
const relay = generateX25519KeyPair();
const appliance = generateX25519KeyPair();
const v1 = createRecipients(relay);
const v2 = createRecipients(relay);
const dedup = createDedupHasher(randomBytes(32));
const recipient = (v: number) => ({ id: 'a-0123456789abcdef', tenant_id: 'clinic-a', encryption_public_key: appliance.publicRaw, envelope_version: v });
const body = parseWebhook(raw)!;
const part = routeWebhook(raw, sig, body, () => 'clinic-a').parts[0]!;

function time(name: string, fn: () => unknown, n = 20_000): number {
  for (let i = 0; i < 2_000; i += 1) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) fn();
  const us = Number(process.hrtime.bigint() - t0) / n / 1000;
  console.log(`${name.padEnd(44)} ${us.toFixed(1).padStart(7)} µs`);
  return us;
}

console.log(`webhook of ${raw.length} bytes`);
const steps = [
  time('verify HMAC (one app secret)', () => verifyMetaSignature([SECRET], raw, sig)),
  time('nesting scan', () => nestingDepthExceeds(raw)),
  time('parse (JSON.parse + routing check)', () => parseWebhook(raw)),
  time('route (split + item digests)', () => routeWebhook(raw, sig, body, () => 'clinic-a')),
  time('dedup keys (HMAC per item)', () => part.items.map((i) => dedup('clinic-a', i))),
];
const encV1 = time('v1: encapsulate (ephemeral key, 1 X25519, KS)', () => v1(recipient(1)), 5_000);
const sealV1 = time('v1: seal (AES-256-GCM)', () => sealPart(v1(recipient(1)), part, 1, Date.now()), 5_000) - encV1;
const encV2 = time('v2: epoch context lookup', () => v2(recipient(2)));
const sealV2 = time('v2: export(seq) + seal', () => sealPart(v2(recipient(2)), part, 1, Date.now())) - encV2;
const common = steps.reduce((a, b) => a + b, 0);
console.log(`main-thread total before commit: v1 ${(common + encV1 + sealV1).toFixed(1)} µs, v2 ${(common + encV2 + sealV2).toFixed(1)} µs`);
