/**
 * Findings of the outside security review, each checked the way a clinic or an operator would
 * notice it: a real relay process on loopback, real HTTP, webhooks signed like Meta's.
 */
import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WS_CLOSE } from '../shared/wire';
import { openStore } from './store';
import { RelayProcess } from './testing/relayProcess';
import { batchWebhook, metaJson, reactionChange, signWebhook, statusChange, textMessageChange, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

let relay: RelayProcess;
let phoneCounter = 610_000_000;
let tenantCounter = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const X25519_ZERO = Buffer.alloc(32);
const ED25519_IDENTITY = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);

async function newTenant(): Promise<{ tenantId: string; phone: string }> {
  tenantCounter += 1;
  const t = { tenantId: `sec-${tenantCounter}`, phone: String((phoneCounter += 1)) };
  await relay.createTenant({ tenantId: t.tenantId, phoneNumberIds: [t.phone] });
  return t;
}

async function pairedTenant(): Promise<{ tenantId: string; phone: string; appliance: TestAppliance }> {
  const t = await newTenant();
  const appliance = TestAppliance.create();
  await appliance.enrol(relay.url, await relay.issueEnrolmentCode(t.tenantId));
  await appliance.connect(relay.wsUrl);
  return { ...t, appliance };
}

/** An appliance row with the given keys, written straight into the store (as an older relay, or anything but enrolment, could have). */
function storeAppliance(tenantId: string, keys: { signing: Buffer; encryption: Buffer }): string {
  const db = openStore(join(relay.dataDir, 'relay.sqlite'));
  try {
    const id = `a-bad${String(tenantCounter).padStart(13, '0')}`;
    db.prepare('INSERT INTO appliances (id, tenant_id, signing_public_key, encryption_public_key, label, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      id,
      tenantId,
      keys.signing,
      keys.encryption,
      'stored before the fix',
      Date.now(),
    );
    return id;
  } finally {
    db.close();
  }
}

function enrolWith(code: string, keys: { signing: string; encryption: string }) {
  return fetch(`${relay.url}/v1/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, signingPublicKey: keys.signing, encryptionPublicKey: keys.encryption }),
  });
}

/** Upgrade headers carrying the "universal" signature that verifies under the identity point. */
function universalUpgradeHeaders(applianceId: string): Record<string, string> {
  return {
    'x-clinic-appliance': applianceId,
    'x-clinic-timestamp': String(Date.now()),
    'x-clinic-nonce': `nonce-${Math.random().toString(36).slice(2)}-0123456789`,
    'x-clinic-signature': Buffer.concat([ED25519_IDENTITY, Buffer.alloc(32)]).toString('base64url'),
  };
}

const upgradeStatus = (headers: Record<string, string>) =>
  TestAppliance.create()
    .connect(relay.wsUrl, { headers })
    .then(
      (w) => (w ? 101 : 0),
      (e: { status?: number }) => e.status,
    );

beforeAll(async () => {
  relay = await RelayProcess.start({ env: { RELAY_REQUEST_TIMEOUT_MS: '15000' } });
});
afterAll(async () => {
  await relay?.stop();
});

describe('small-order keys', () => {
  it('refuses them at enrolment with a clear 400, stores nothing, and the code still pairs the real appliance', async () => {
    const t = await newTenant();
    const code = await relay.issueEnrolmentCode(t.tenantId);
    const good = TestAppliance.create();
    const zeroX = await enrolWith(code, { signing: good.signingPublicKey, encryption: X25519_ZERO.toString('base64url') });
    expect(zeroX.status).toBe(400);
    expect(((await zeroX.json()) as { error: { message: string } }).error.message).toMatch(/encryptionPublicKey: the key is a small-order point/);
    const identity = await enrolWith(code, { signing: ED25519_IDENTITY.toString('base64url'), encryption: good.encryptionPublicKey });
    expect(identity.status).toBe(400);
    expect(((await identity.json()) as { error: { message: string } }).error.message).toMatch(/signingPublicKey: the key is a small-order point/);
    // y = p + 2: a non-canonical spelling.
    const nonCanonical = Buffer.from(`ef${'ff'.repeat(30)}7f`, 'hex').toString('base64url');
    expect((await enrolWith(code, { signing: nonCanonical, encryption: good.encryptionPublicKey })).status).toBe(400);
    const list = JSON.parse(relay.cli(['list']).stdout) as { id: string; appliances: unknown[] }[];
    expect(list.find((x) => x.id === t.tenantId)?.appliances).toEqual([]);
    expect(await relay.metric('relay_enrolments_total', { outcome: 'bad_key' })).toBe(3);
    await good.enrol(relay.url, code);
    expect(good.enrolment?.tenantId).toBe(t.tenantId);
  });

  it("lets one clinic's unsealable key hold back only that clinic's part of a POST; the others are delivered once", async () => {
    const a = await pairedTenant();
    const b = await newTenant();
    storeAppliance(b.tenantId, { signing: Buffer.from(TestAppliance.create().signingPublicKey, 'base64url'), encryption: X25519_ZERO });
    const body = metaJson(
      batchWebhook([
        textMessageChange({ phoneNumberId: a.phone, wamid: 'wamid.sec-A', text: 'für A' }),
        textMessageChange({ phoneNumberId: b.phone, wamid: 'wamid.sec-B', text: 'für B' }),
      ]),
    );
    const first = await relay.postWebhook(body);
    expect(first.status).toBe(503);
    await a.appliance.waitForDeliveries(1);
    expect(a.appliance.deliveries[0]!.body).toContain('wamid.sec-A');
    expect(relay.queued(b.tenantId)).toBe(0);
    expect(await relay.metric('relay_webhooks_deferred_total', { reason: 'unsealable' })).toBe(1);
    expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'commit_failed' })).toBe(0);
    // Meta's retry: A's part is recognised, B's still waits.
    expect((await relay.postWebhook(body)).status).toBe(503);
    // A's own traffic is answered as usual.
    expect((await relay.postWebhook(textMessageWebhook({ phoneNumberId: a.phone, wamid: 'wamid.sec-A2', text: 'x' }))).status).toBe(200);
    await a.appliance.waitForDeliveries(2);
    await sleep(200);
    expect(a.appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.messages[0].id)).toEqual(['wamid.sec-A', 'wamid.sec-A2']);
    expect(relay.logs()).not.toContain('für B');
    a.appliance.close();
  });

  it('disables an appliance whose stored key is small-order at start: a log line and a metric, no crash, no universal-signature login', async () => {
    const c = await newTenant();
    const badSigner = storeAppliance(c.tenantId, { signing: ED25519_IDENTITY, encryption: TestAppliance.create().encryption.publicRaw });
    // Even before a restart the universal signature buys nothing.
    expect(await upgradeStatus(universalUpgradeHeaders(badSigner))).toBe(401);
    await relay.restart();
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
    expect(relay.logs()).toMatch(new RegExp(`"applianceId":"${badSigner}"[^\\n]*appliance disabled at start`));
    expect(await relay.metric('relay_appliances_disabled_total', { reason: 'bad_signing_key' })).toBe(1);
    // The one with the all-zero encryption key from the previous test went the same way.
    expect(await relay.metric('relay_appliances_disabled_total', { reason: 'bad_encryption_key' })).toBe(1);
    expect(await upgradeStatus(universalUpgradeHeaders(badSigner))).toBe(401);
    const list = JSON.parse(relay.cli(['list']).stdout) as { id: string; appliances: { id: string; revokedReason: string | null }[] }[];
    expect(list.find((x) => x.id === c.tenantId)?.appliances).toMatchObject([{ id: badSigner, revokedReason: 'bad_signing_key' }]);
    // The clinic pairs again with a plain code: nothing active is left to replace.
    const code = JSON.parse(relay.cli(['enrol-code', c.tenantId]).stdout) as { code: string };
    await TestAppliance.create().enrol(relay.url, code.code);
  });
});

describe('duplicates are whole items, not ids', () => {
  it('delivers a reaction added, changed and removed under one message id, and drops only true retries', async () => {
    const t = await pairedTenant();
    const react = (emoji: string) => metaJson(batchWebhook([reactionChange({ phoneNumberId: t.phone, wamid: 'wamid.REACT', reactsTo: 'wamid.ORIG', emoji })]));
    const posts = [react('👍'), react('👍'), react('❤️'), react(''), react('')];
    for (const p of posts) expect((await relay.postWebhook(p)).status).toBe(200);
    await t.appliance.waitForDeliveries(3);
    await sleep(300);
    const emojis = t.appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.messages[0].reaction.emoji as string);
    expect(emojis).toEqual(['👍', '❤️', '']);
    expect(await relay.metric('relay_duplicates_dropped_total', { tenant: t.tenantId })).toBe(2);
    t.appliance.close();
  });

  it('delivers sent, delivered and read of one message as three items; the same status twice is one', async () => {
    const t = await pairedTenant();
    const status = (s: 'sent' | 'delivered' | 'read', timestamp: number) =>
      metaJson(batchWebhook([statusChange({ phoneNumberId: t.phone, wamid: 'wamid.OUT', status: s, timestamp })]));
    for (const p of [status('sent', 1760000001), status('delivered', 1760000002), status('read', 1760000003), status('read', 1760000003)]) {
      expect((await relay.postWebhook(p)).status).toBe(200);
    }
    // The same status inside another batch (a retry that Meta packed differently) is still the same item.
    await relay.postWebhook(batchWebhook([statusChange({ phoneNumberId: t.phone, wamid: 'wamid.OUT', status: 'sent', timestamp: 1760000001 })], 'other-entry'));
    await t.appliance.waitForDeliveries(3);
    await sleep(300);
    expect(t.appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.statuses[0].status)).toEqual(['sent', 'delivered', 'read']);
    expect(relay.queued(t.tenantId)).toBe(0);
    t.appliance.close();
  });
});

describe('bodies and paths', () => {
  it('answers 400 to a signed body nested too deep, and keeps serving', async () => {
    const t = await pairedTenant();
    const nested = (depth: number) =>
      `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"x","value":{"metadata":{"phone_number_id":"${t.phone}"},"deep":${'['.repeat(depth)}${']'.repeat(depth)},"text":"[[[[[[[[{{{{{{{{"}}]}]}`;
    const deep = await relay.postWebhook(nested(200_000));
    expect(deep.status).toBe(400);
    expect(deep.body).toMatch(/nests deeper than 64/);
    expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'too_deep' })).toBe(1);
    // Brackets inside strings do not count, and a modest depth passes.
    expect((await relay.postWebhook(nested(50))).status).toBe(200);
    await t.appliance.waitForDeliveries(1);
    t.appliance.close();
  });

  it('answers 413 at once to a Content-Length over the cap, without waiting for the body', async () => {
    const socket = net.connect(relay.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('error', () => undefined);
    const started = Date.now();
    socket.write(
      `POST /webhooks/whatsapp HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n` +
        `X-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\n\r\n{"object":`,
    );
    await new Promise((r) => socket.once('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('serves the webhook only on its exact path: //host/webhooks/whatsapp is 404 and stores nothing', async () => {
    const t = await pairedTenant();
    const raw = Buffer.from(metaJson(textMessageWebhook({ phoneNumberId: t.phone, wamid: 'wamid.path', text: 'x' })));
    const post = (path: string) =>
      fetch(`${relay.url}${path}`, { method: 'POST', headers: { 'x-hub-signature-256': signWebhook(raw, relay.appSecret) }, body: new Uint8Array(raw) }).then((r) => r.status);
    expect(await post('//evil.example/webhooks/whatsapp')).toBe(404);
    expect(await post('/webhooks/whatsapp/')).toBe(404);
    const qs = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.verify_token': relay.verifyToken, 'hub.challenge': '42' });
    expect((await fetch(`${relay.url}//evil.example/webhooks/whatsapp?${qs}`)).status).toBe(404);
    expect(await (await fetch(`${relay.url}/webhooks/whatsapp?${qs}`)).text()).toBe('42');
    const probe = TestAppliance.create();
    const upgrade = await new Promise<number>((resolve) => {
      const s = net.connect(relay.port, '127.0.0.1', () =>
        s.write('GET //evil.example/v1/appliance HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
      );
      s.once('data', (d) => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(d.toString())?.[1])));
    });
    expect(upgrade).toBe(404);
    void probe;
    await sleep(200);
    expect(relay.queued(t.tenantId)).toBe(0);
    expect((await post('/webhooks/whatsapp')).toString()).toBe('200');
    t.appliance.close();
  });
});

describe('metrics', () => {
  it('are not served on the public listener without a token; the loopback metrics listener serves them', async () => {
    await pairedTenant();
    const pub = await fetch(`${relay.url}/metrics`);
    expect(pub.status).toBe(404);
    expect(await pub.text()).not.toContain('sec-');
    const local = await fetch(relay.metricsUrl);
    expect(local.status).toBe(200);
    expect(await local.text()).toContain('relay_webhooks_accepted_total');
    expect((await fetch(relay.metricsUrl.replace('/metrics', '/healthz'))).status).toBe(404);
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
  });
});

describe('enrolment codes', () => {
  it('keeps one valid code per tenant, and replacing a running appliance needs --replace, which says what happens to its queue', async () => {
    const t = await newTenant();
    const older = await relay.issueEnrolmentCode(t.tenantId);
    const newer = await relay.issueEnrolmentCode(t.tenantId);
    await expect(TestAppliance.create().enrol(relay.url, older)).rejects.toMatchObject({ status: 403 });
    const running = TestAppliance.create();
    await running.enrol(relay.url, newer);
    await running.connect(relay.wsUrl, { autoAck: false });
    for (const i of [1, 2]) await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phone, wamid: `wamid.q${i}`, text: 'x' }));
    await running.waitForDeliveries(2);

    const plain = relay.cli(['enrol-code', t.tenantId]);
    expect(plain.status).toBe(2);
    expect(plain.stderr).toContain(`tenant ${t.tenantId} has an active appliance (${running.applianceId}, 2 envelopes waiting)`);
    expect(plain.stderr).toContain('--replace');
    await expect(relay.issueEnrolmentCode(t.tenantId, 60_000, { replace: false })).rejects.toThrow(/--replace/);

    const replace = relay.cli(['enrol-code', t.tenantId, '--replace']);
    expect(replace.status).toBe(0);
    const issued = JSON.parse(replace.stdout) as { code: string; replaces: { applianceId: string; queuedEnvelopes: number; note: string } };
    expect(issued.replaces).toMatchObject({ applianceId: running.applianceId, queuedEnvelopes: 2 });
    expect(issued.replaces.note).toMatch(/2 waiting envelopes are dropped/);
    // The running appliance is untouched until the code is redeemed.
    expect(relay.queued(t.tenantId)).toBe(2);
    await TestAppliance.create().enrol(relay.url, issued.code);
    expect((await running.closed)!.code).toBe(WS_CLOSE.revoked);
    expect(relay.queued(t.tenantId)).toBe(0);
  });
});

describe('phone number ids', () => {
  it('refuses a phone_number_id that is not numeric when an operator adds a tenant or a number, and stores nothing', async () => {
    const add = relay.cli(['tenant-add', 'clinic-typo', '--phone', '110000000000009', '--phone', '+49 151 2345678']);
    expect(add.status).toBe(2);
    expect(add.stderr).toMatch(/--phone: a phone_number_id is digits only: the id Meta shows/);
    expect(add.stderr).not.toContain('2345678');
    await expect(relay.createTenant({ tenantId: 'clinic-typo', phoneNumberIds: ['110000000000009', 'wa-110000000000010'] })).rejects.toThrow(/digits only/);
    const list = JSON.parse(relay.cli(['list']).stdout) as { id: string }[];
    expect(list.some((x) => x.id === 'clinic-typo')).toBe(false);
    const t = await newTenant();
    const number = relay.cli(['number-add', t.tenantId, '1100-0000']);
    expect(number.status).toBe(2);
    expect(number.stderr).toContain('digits only');
  });
});
