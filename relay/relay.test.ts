import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WS_AUTH_MAX_SKEW_MS, WS_CLOSE } from '../shared/wire';
import { RelayProcess } from './testing/relayProcess';
import { batchWebhook, metaJson, signWebhook, statusChange, textMessageChange, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

let relay: RelayProcess;
let phoneCounter = 300_000;
let tenantCounter = 0;

/** A fresh tenant with its own numbers and an enrolled (not yet connected) appliance. */
async function tenantWithAppliance(numbers = 1): Promise<{ tenantId: string; phones: string[]; appliance: TestAppliance }> {
  tenantCounter += 1;
  const tenantId = `clinic-${tenantCounter}`;
  const phones = Array.from({ length: numbers }, () => String((phoneCounter += 1)));
  await relay.createTenant({ tenantId, phoneNumberIds: phones });
  const appliance = TestAppliance.create();
  await appliance.enrol(relay.url, await relay.issueEnrolmentCode(tenantId));
  return { tenantId, phones, appliance };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  relay = await RelayProcess.start({
    env: { RELAY_BODY_LIMIT_BYTES: String(256 * 1024), RELAY_HEADERS_TIMEOUT_MS: '800', RELAY_DELIVERY_WINDOW: '4', RELAY_HEARTBEAT_MS: '300' },
    appSecrets: ['current-app-secret-0001', 'previous-app-secret-0002'],
  });
});
afterAll(async () => {
  await relay?.stop();
});

describe('Meta verification handshake', () => {
  it('echoes hub.challenge byte for byte as plain text with the right token', async () => {
    const challenge = '1158201444 ä/+&=?x';
    const qs = new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.verify_token': relay.verifyToken, 'hub.challenge': challenge });
    const res = await fetch(`${relay.url}/webhooks/whatsapp?${qs}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(challenge))).toBe(true);
  });

  it.each([
    ['a wrong token', { 'hub.mode': 'subscribe', 'hub.verify_token': 'not-the-token-at-all', 'hub.challenge': '1' }],
    ['a wrong mode', { 'hub.mode': 'unsubscribe', 'hub.verify_token': 'TOKEN', 'hub.challenge': '1' }],
    ['no token', { 'hub.mode': 'subscribe', 'hub.challenge': '1' }],
  ])('answers 403 to %s', async (_name, params) => {
    const p = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v === 'TOKEN' ? relay.verifyToken : v]));
    const res = await fetch(`${relay.url}/webhooks/whatsapp?${new URLSearchParams(p)}`);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('1"');
  });
});

describe('webhook intake', () => {
  it('refuses a missing or wrong signature with 401 and stores nothing', async () => {
    const { tenantId, phones } = await tenantWithAppliance();
    const body = textMessageWebhook({ phoneNumberId: phones[0]!, wamid: 'wamid.unsigned', text: 'unsigned' });
    expect((await relay.postWebhook(body, { signature: null })).status).toBe(401);
    expect((await relay.postWebhook(body, { secret: 'an-attackers-guess-000' })).status).toBe(401);
    expect((await relay.postWebhook(body, { signature: 'sha256=' + '0'.repeat(64) })).status).toBe(401);
    expect(relay.queued(tenantId)).toBe(0);
    expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'bad_signature' })).toBeGreaterThanOrEqual(2);
  });

  it('accepts either app secret during rotation', async () => {
    const { tenantId, phones } = await tenantWithAppliance();
    const res1 = await relay.postWebhook(textMessageWebhook({ phoneNumberId: phones[0]!, wamid: 'wamid.rot1', text: 'x' }));
    const res2 = await relay.postWebhook(textMessageWebhook({ phoneNumberId: phones[0]!, wamid: 'wamid.rot2', text: 'y' }), {
      secret: 'previous-app-secret-0002',
    });
    expect([res1.status, res2.status]).toEqual([200, 200]);
    expect(relay.queued(tenantId)).toBe(2);
  });

  it('answers 413 over the body cap and stores nothing', async () => {
    const { tenantId, phones } = await tenantWithAppliance();
    const big = textMessageWebhook({ phoneNumberId: phones[0]!, wamid: 'wamid.big', text: 'x'.repeat(300 * 1024) });
    expect((await relay.postWebhook(big)).status).toBe(413);
    // Chunked, without a Content-Length to refuse up front: cut off while streaming.
    const raw = Buffer.from(JSON.stringify(big));
    const res = await fetch(`${relay.url}/webhooks/whatsapp`, {
      method: 'POST',
      headers: { 'x-hub-signature-256': signWebhook(raw, relay.appSecret) },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < raw.length; i += 16 * 1024) c.enqueue(raw.subarray(i, i + 16 * 1024));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(relay.queued(tenantId)).toBe(0);
  });

  it('cuts off a client that sends its headers too slowly', async () => {
    const socket = net.connect(relay.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const started = Date.now();
    socket.write('POST /webhooks/whatsapp HTTP/1.1\r\nHost: relay\r\n');
    const drip = setInterval(() => socket.writable && socket.write('X-Slow: a\r\n'), 150);
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    // The relay may cut the connection while a header line is still on its way: the kernel then
    // answers the client's next write with a reset. That is a cut-off too, not a failure.
    let error: string | undefined;
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
    await new Promise((r) => socket.once('close', r));
    clearInterval(drip);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(4_000);
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(answer === '' || answer.startsWith('HTTP/1.1 408')).toBe(true);
    expect([undefined, 'ECONNRESET', 'EPIPE']).toContain(error);
  });

  it('answers 200 for an unknown phone number, counts it and keeps nothing', async () => {
    const before = await relay.metric('relay_unknown_phone_number_total');
    const queuedBefore = relay.queued();
    const res = await relay.postWebhook(textMessageWebhook({ phoneNumberId: '999999999', wamid: 'wamid.nobody', text: 'hello?' }));
    expect(res.status).toBe(200);
    expect(await relay.metric('relay_unknown_phone_number_total')).toBe(before + 1);
    expect(relay.queued()).toBe(queuedBefore);
  });

  it('answers 503 for a clinic without an active appliance (Meta retries), and delivers the retry once after enrolment', async () => {
    await relay.createTenant({ tenantId: 'clinic-unpaired', phoneNumberIds: ['777000'] });
    const body = metaJson(textMessageWebhook({ phoneNumberId: '777000', wamid: 'wamid.early', text: 'Vor der Einrichtung' }));
    const deferredBefore = await relay.metric('relay_webhooks_deferred_total', { reason: 'no_appliance' });
    const early = await relay.postWebhook(body);
    expect(early.status).toBe(503);
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(relay.queued('clinic-unpaired')).toBe(0);
    expect(await relay.metric('relay_webhooks_deferred_total', { reason: 'no_appliance' })).toBe(deferredBefore + 1);
    // The warning crosses a pipe from the child; under load it can trail the response.
    for (let i = 0; i < 50 && !relay.logs().includes('clinic-unpaired'); i += 1) await sleep(100);
    expect(relay.logs()).toContain('clinic-unpaired');
    expect(relay.logs()).not.toContain('Vor der Einrichtung');

    const appliance = TestAppliance.create();
    await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-unpaired'));
    await appliance.connect(relay.wsUrl);
    // Meta's retry is byte-identical.
    expect((await relay.postWebhook(body)).status).toBe(200);
    await appliance.waitForDeliveries(1);
    expect((await relay.postWebhook(body)).status).toBe(200);
    await sleep(200);
    expect(appliance.deliveries).toHaveLength(1);
    expect(appliance.deliveries[0]!.body).toBe(body);

    // Between a revocation and the next enrolment the clinic has no appliance either.
    await relay.revoke(appliance.applianceId);
    await appliance.closed;
    const afterRevoke = textMessageWebhook({ phoneNumberId: '777000', wamid: 'wamid.revoked-gap', text: 'x' });
    expect((await relay.postWebhook(afterRevoke)).status).toBe(503);
    expect(relay.queued('clinic-unpaired')).toBe(0);
  });

  it("queues the other clinics' parts of a deferred POST at once; the retry queues only what was missing", async () => {
    const a = await tenantWithAppliance();
    await a.appliance.connect(relay.wsUrl);
    tenantCounter += 1;
    const late = { tenantId: `clinic-${tenantCounter}`, phone: String((phoneCounter += 1)) };
    await relay.createTenant({ tenantId: late.tenantId, phoneNumberIds: [late.phone] });
    const body = metaJson(
      batchWebhook([
        textMessageChange({ phoneNumberId: a.phones[0]!, wamid: 'wamid.mixed-A', text: 'für A' }),
        textMessageChange({ phoneNumberId: late.phone, wamid: 'wamid.mixed-L', text: 'für L' }),
      ]),
    );
    expect((await relay.postWebhook(body)).status).toBe(503);
    await a.appliance.waitForDeliveries(1);
    expect(a.appliance.deliveries[0]!.body).toContain('wamid.mixed-A');
    expect(a.appliance.deliveries[0]!.body).not.toContain('wamid.mixed-L');
    expect(relay.queued(late.tenantId)).toBe(0);

    const lateAppliance = TestAppliance.create();
    await lateAppliance.enrol(relay.url, await relay.issueEnrolmentCode(late.tenantId));
    await lateAppliance.connect(relay.wsUrl);
    const duplicatesBefore = await relay.metric('relay_duplicates_dropped_total', { tenant: a.tenantId });
    expect((await relay.postWebhook(body)).status).toBe(200);
    await lateAppliance.waitForDeliveries(1);
    await sleep(200);
    expect(lateAppliance.deliveries).toHaveLength(1);
    expect(lateAppliance.deliveries[0]!.body).toContain('wamid.mixed-L');
    expect(lateAppliance.deliveries[0]!.body).not.toContain('wamid.mixed-A');
    // A's part of the retry was recognised, not queued a second time.
    expect(a.appliance.deliveries).toHaveLength(1);
    expect(await relay.metric('relay_duplicates_dropped_total', { tenant: a.tenantId })).toBe(duplicatesBefore + 1);
    a.appliance.close();
    lateAppliance.close();
  });

  it('splits a batch for two tenants: each appliance gets only its own changes', async () => {
    const a = await tenantWithAppliance(2);
    const b = await tenantWithAppliance(1);
    await a.appliance.connect(relay.wsUrl);
    await b.appliance.connect(relay.wsUrl);
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'waba-1',
          changes: [
            textMessageChange({ phoneNumberId: a.phones[0]!, wamid: 'wamid.A1', text: 'Für Praxis A' }),
            textMessageChange({ phoneNumberId: b.phones[0]!, wamid: 'wamid.B1', text: 'Für Praxis B' }),
          ],
        },
        {
          id: 'waba-2',
          changes: [
            statusChange({ phoneNumberId: a.phones[1]!, wamid: 'wamid.A0', status: 'read' }),
            statusChange({ phoneNumberId: b.phones[0]!, wamid: 'wamid.B0', status: 'delivered' }),
          ],
        },
      ],
    };
    expect((await relay.postWebhook(metaJson(body))).status).toBe(200);
    await a.appliance.waitForDeliveries(1);
    await b.appliance.waitForDeliveries(1);
    await sleep(200);
    expect(a.appliance.deliveries).toHaveLength(1);
    expect(b.appliance.deliveries).toHaveLength(1);
    const aBody = a.appliance.deliveries[0]!.body;
    const bBody = b.appliance.deliveries[0]!.body;
    expect(a.appliance.deliveries[0]!.plaintext.kind).toBe('relay');
    expect(aBody).toContain('wamid.A1');
    expect(aBody).toContain('wamid.A0');
    expect(aBody).not.toContain('wamid.B');
    expect(bBody).toContain('wamid.B1');
    expect(bBody).toContain('wamid.B0');
    expect(bBody).not.toContain('wamid.A');
    expect(JSON.parse(bBody).entry[0].changes[0].value.messages[0].text.body).toBe('Für Praxis B');
    a.appliance.close();
    b.appliance.close();
  });

  it('delivers a single-tenant body exactly as Meta sent it, with its signature', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl);
    const raw = metaJson(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: 'wamid.exact', text: 'Grüße/ä' }));
    await relay.postWebhook(raw);
    await t.appliance.waitForDeliveries(1);
    const pt = t.appliance.deliveries[0]!.plaintext;
    expect(pt.kind).toBe('meta');
    if (pt.kind === 'meta') {
      expect(Buffer.from(pt.body, 'base64url').toString()).toBe(raw);
      expect(pt.signature).toBe(signWebhook(raw, relay.appSecret));
    }
    t.appliance.close();
  });

  it('drops recognised duplicates (Meta retries and double deliveries) but keeps new items', async () => {
    const t = await tenantWithAppliance();
    const p = t.phones[0]!;
    const body = metaJson(textMessageWebhook({ phoneNumberId: p, wamid: 'wamid.dup', text: 'once' }));
    expect((await relay.postWebhook(body)).status).toBe(200);
    expect((await relay.postWebhook(body)).status).toBe(200);
    // The same message inside another batch is a duplicate too; a batch with something new is not.
    await relay.postWebhook(batchWebhook([textMessageChange({ phoneNumberId: p, wamid: 'wamid.dup', text: 'once' })], 'other-entry'));
    await relay.postWebhook(
      batchWebhook([textMessageChange({ phoneNumberId: p, wamid: 'wamid.dup', text: 'once' }), statusChange({ phoneNumberId: p, wamid: 'wamid.out', status: 'sent' })]),
    );
    expect(relay.queued(t.tenantId)).toBe(2);
    expect(await relay.metric('relay_duplicates_dropped_total', { tenant: t.tenantId })).toBe(2);
  });

  it('routes a number the operator moved with the CLI (another process) to its new clinic from the next webhook on', async () => {
    const from = await tenantWithAppliance();
    const to = await tenantWithAppliance();
    const phone = from.phones[0]!;
    const post = (wamid: string) => relay.postWebhook(textMessageWebhook({ phoneNumberId: phone, wamid, text: 'Termin?' }));
    // Routed once, so the relay remembers the number as the first clinic's.
    expect((await post('wamid.move-1')).status).toBe(200);
    expect(relay.queued(from.tenantId)).toBe(1);
    const unknownBefore = await relay.metric('relay_unknown_phone_number_total');
    expect(relay.cli(['number-remove', phone]).status).toBe(0);
    // Removed: nobody's number any more, answered 200 and kept for no one.
    expect((await post('wamid.move-2')).status).toBe(200);
    expect(await relay.metric('relay_unknown_phone_number_total')).toBe(unknownBefore + 1);
    expect(relay.cli(['number-add', to.tenantId, phone]).status).toBe(0);
    expect((await post('wamid.move-3')).status).toBe(200);
    expect((await post('wamid.move-4')).status).toBe(200);
    expect(relay.queued(from.tenantId)).toBe(1);
    expect(relay.queued(to.tenantId)).toBe(2);
  });
});

describe('enrolment', () => {
  it('accepts a code once, refuses it afterwards and refuses unknown codes', async () => {
    await relay.createTenant({ tenantId: 'clinic-enrol', phoneNumberIds: ['880001'] });
    const code = await relay.issueEnrolmentCode('clinic-enrol');
    const first = TestAppliance.create();
    const res = await first.enrol(relay.url, code.toLowerCase());
    expect(res).toMatchObject({ tenantId: 'clinic-enrol', phoneNumberIds: ['880001'], relayEncryptionPublicKey: relay.relayPublicKey });
    await expect(TestAppliance.create().enrol(relay.url, code)).rejects.toMatchObject({ status: 403 });
    await expect(TestAppliance.create().enrol(relay.url, 'ABCD-EFGH-JKLM-NPQR')).rejects.toMatchObject({ status: 403 });
    const bad = await fetch(`${relay.url}/v1/enrol`, { method: 'POST', body: JSON.stringify({ code, signingPublicKey: 'short' }) });
    expect(bad.status).toBe(400);
  });

  it('re-pairing replaces the keys: the old appliance is disconnected and refused', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl);
    // The writer thread has sealed to the old appliance (and remembers it) before the re-pairing.
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: 'wamid.before-repair', text: 'x' }));
    await t.appliance.waitForDeliveries(1);
    const replacement = TestAppliance.create();
    await replacement.enrol(relay.url, await relay.issueEnrolmentCode(t.tenantId));
    expect((await t.appliance.closed)!.code).toBe(WS_CLOSE.revoked);
    await expect(t.appliance.connect(relay.wsUrl)).rejects.toMatchObject({ status: 401 });
    await replacement.connect(relay.wsUrl);
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: 'wamid.after-repair', text: 'x' }));
    await replacement.waitForDeliveries(1);
    expect(replacement.deliveries[0]!.body).toContain('wamid.after-repair');
    replacement.close();
  });
});

describe('appliance socket', () => {
  it('refuses upgrades without auth, stale, with a reused nonce, a wrong key, or for an unknown appliance', async () => {
    const t = await tenantWithAppliance();
    const attempt = (headers: Record<string, string>) =>
      t.appliance.connect(relay.wsUrl, { headers }).then(
        () => 101,
        (e: { status?: number }) => e.status,
      );
    expect(await attempt({})).toBe(401);
    expect(await attempt(t.appliance.upgradeHeaders({ timestamp: Date.now() - WS_AUTH_MAX_SKEW_MS - 5_000 }))).toBe(401);
    expect(await attempt(t.appliance.upgradeHeaders({ timestamp: Date.now() + WS_AUTH_MAX_SKEW_MS + 5_000 }))).toBe(401);
    expect(await attempt(t.appliance.upgradeHeaders({ signer: generateKeyPairSync('ed25519').privateKey }))).toBe(401);
    expect(await attempt(t.appliance.upgradeHeaders({ applianceId: 'a-0000000000000000' }))).toBe(401);
    const headers = t.appliance.upgradeHeaders({ nonce: 'fixed-nonce-0123456789' });
    expect(await attempt(headers)).toBe(101);
    t.appliance.close();
    expect(await attempt(headers)).toBe(401);
    expect(await relay.metric('relay_ws_upgrades_refused_total', { reason: 'replayed_nonce' })).toBeGreaterThanOrEqual(1);
  });

  it('redelivers unacknowledged envelopes on the next connection, in seq order', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl, { autoAck: false });
    for (const i of [1, 2, 3]) await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: `wamid.re${i}`, text: `m${i}` }));
    await t.appliance.waitForDeliveries(3);
    const seqs = t.appliance.deliveries.map((d) => d.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    t.appliance.ack(seqs[0]!);
    await relay.waitForQueued(2, t.tenantId, 5_000);
    t.appliance.close();
    await sleep(100);
    t.appliance.deliveries.length = 0;
    const welcome = await t.appliance.connect(relay.wsUrl);
    expect(welcome.backlog.queued).toBe(2);
    await t.appliance.waitForDeliveries(2);
    expect(t.appliance.deliveries.map((d) => d.seq)).toEqual(seqs.slice(1));
    expect(t.appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.messages[0].id)).toEqual(['wamid.re2', 'wamid.re3']);
    await relay.waitForQueued(0, t.tenantId, 5_000);
    t.appliance.close();
  });

  it('keeps at most the window unacknowledged and reports the backlog', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl, { autoAck: false });
    for (let i = 0; i < 7; i += 1) await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: `wamid.w${i}`, text: 'w' }));
    await t.appliance.waitForDeliveries(4);
    const backlog = await t.appliance.nextFrame('backlog');
    await sleep(300);
    expect(t.appliance.deliveries).toHaveLength(4);
    expect(t.appliance.frames.filter((f) => f.type === 'backlog').at(-1)).toMatchObject({ backlog: { queued: 7 } });
    expect(backlog.backlog.oldestAt).toBeTypeOf('number');
    t.appliance.ack(t.appliance.deliveries[0]!.seq);
    await t.appliance.waitForDeliveries(5);
    await t.appliance.waitUntil(() => t.appliance.frames.some((f) => f.type === 'backlog' && f.backlog.queued === 6), 3_000, 'backlog 6');
    t.appliance.close();
  });

  it('closes the socket on a malformed frame and changes nothing', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl, { autoAck: false });
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: t.phones[0]!, wamid: 'wamid.bad', text: 'x' }));
    await t.appliance.waitForDeliveries(1);
    t.appliance.send('{"type":"ack","seq":"1; DROP TABLE envelopes"}');
    expect((await t.appliance.closed)!.code).toBe(WS_CLOSE.badFrame);
    expect(relay.queued(t.tenantId)).toBe(1);
    await t.appliance.connect(relay.wsUrl, { autoAck: false });
    t.appliance.send('not json at all');
    expect((await t.appliance.closed)!.code).toBe(WS_CLOSE.badFrame);
    expect(relay.queued(t.tenantId)).toBe(1);
  });

  it('replaces an older connection with a newer one for the same appliance', async () => {
    const t = await tenantWithAppliance();
    const older = t.appliance;
    await older.connect(relay.wsUrl);
    const olderClosed = older.closed!;
    await older.connect(relay.wsUrl);
    expect((await olderClosed).code).toBe(WS_CLOSE.replaced);
    older.close();
  });

  it('revoking an appliance closes its socket promptly and refuses it afterwards', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl);
    const started = Date.now();
    await relay.revoke(t.appliance.applianceId);
    expect((await t.appliance.closed)!.code).toBe(WS_CLOSE.revoked);
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(t.appliance.connect(relay.wsUrl)).rejects.toMatchObject({ status: 401 });
  });

  it('terminates a socket that stops answering pings', async () => {
    const t = await tenantWithAppliance();
    await t.appliance.connect(relay.wsUrl);
    // Stop reading the TCP socket: pings go unanswered, as with a frozen appliance or a dead link.
    (t.appliance.ws as unknown as { _socket: net.Socket })._socket.pause();
    await t.appliance.waitUntil(() => relay.logs().includes('silent past a heartbeat'), 5_000, 'heartbeat termination');
  });
});

describe('audit checkpoint witness', () => {
  it('accepts, returns the latest, and refuses regression, conflict and bad signatures', async () => {
    const t = await tenantWithAppliance();
    const a = t.appliance;
    await a.connect(relay.wsUrl);
    const h = (c: string) => c.repeat(64);
    const exchange = async (frame: unknown, type: 'checkpoint.accepted' | 'error' | 'checkpoint.latest') => {
      const next = a.nextFrame(type);
      a.send(frame);
      return next;
    };
    expect(await exchange({ type: 'checkpoint.get' }, 'checkpoint.latest')).toMatchObject({ latest: null });
    const cp10 = a.signCheckpoint({ seq: 10, headHash: h('a'), at: Date.now() });
    expect(await exchange({ type: 'checkpoint', signed: cp10 }, 'checkpoint.accepted')).toMatchObject({ seq: 10 });
    expect(await exchange({ type: 'checkpoint', signed: cp10 }, 'checkpoint.accepted')).toMatchObject({ seq: 10 });
    const cp5 = a.signCheckpoint({ seq: 5, headHash: h('b'), at: Date.now() });
    expect(await exchange({ type: 'checkpoint', signed: cp5 }, 'error')).toMatchObject({ code: 'CHECKPOINT_REGRESSION' });
    const cp10b = a.signCheckpoint({ seq: 10, headHash: h('c'), at: Date.now() });
    expect(await exchange({ type: 'checkpoint', signed: cp10b }, 'error')).toMatchObject({ code: 'CHECKPOINT_CONFLICT' });
    const forged = a.signCheckpoint({ seq: 20, headHash: h('d'), at: Date.now() }, generateKeyPairSync('ed25519').privateKey);
    expect(await exchange({ type: 'checkpoint', signed: forged }, 'error')).toMatchObject({ code: 'CHECKPOINT_BAD_SIGNATURE' });
    expect(await exchange({ type: 'checkpoint.get' }, 'checkpoint.latest')).toMatchObject({ latest: cp10 });
    const cp11 = a.signCheckpoint({ seq: 11, headHash: h('e'), at: Date.now() });
    expect(await exchange({ type: 'checkpoint', signed: cp11 }, 'checkpoint.accepted')).toMatchObject({ seq: 11 });
    expect(await exchange({ type: 'checkpoint.get' }, 'checkpoint.latest')).toMatchObject({ latest: cp11 });
    a.close();
  });
});

describe('operations', () => {
  it('serves health, readiness and Prometheus metrics without patient data', async () => {
    expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
    const text = await (await fetch(relay.metricsUrl)).text();
    for (const name of [
      'relay_webhooks_accepted_total',
      'relay_webhooks_rejected_total',
      'relay_queue_depth',
      'relay_queue_oldest_age_seconds',
      'relay_delivery_latency_seconds',
      'relay_connected_appliances',
      'relay_envelopes_expired_total',
      'relay_unknown_phone_number_total',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).not.toContain('15555550101');
    expect(text).not.toContain('Maria');
    expect(relay.logs()).not.toContain('15555550101');
    expect(relay.logs()).not.toContain('Praxis');
  });

  it('asks for the bearer token on /metrics when the operator set one', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const guarded = await RelayProcess.start({ env: { RELAY_METRICS_TOKEN: token } });
    try {
      const without = await fetch(`${guarded.url}/metrics`);
      expect(without.status).toBe(401);
      expect(without.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
      const right = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain('relay_webhooks_accepted_total');
      // Health stays open for load balancers.
      expect((await fetch(`${guarded.url}/healthz`)).status).toBe(200);
      expect(guarded.logs()).not.toContain(token);
    } finally {
      await guarded.stop();
    }
  });

  it('runs the operator CLI: add a tenant and a number, issue a code, list, revoke', () => {
    const add = relay.cli(['tenant-add', 'clinic-cli', '--label', 'Praxis am Markt', '--phone', '990001']);
    expect(add.status).toBe(0);
    expect(relay.cli(['number-add', 'clinic-cli', '990002']).status).toBe(0);
    expect(relay.cli(['number-add', 'clinic-cli', 'not-digits']).status).toBe(2);
    const code = JSON.parse(relay.cli(['enrol-code', 'clinic-cli']).stdout) as { code: string };
    expect(code.code).toMatch(/^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
    const list = JSON.parse(relay.cli(['list']).stdout) as { id: string; phoneNumberIds: string[] }[];
    expect(list.find((t) => t.id === 'clinic-cli')?.phoneNumberIds).toEqual(['990001', '990002']);
    expect(relay.cli(['revoke', 'a-ffffffffffffffff']).status).toBe(2);
    expect(relay.cli(['frobnicate']).status).toBe(2);
  });
});

/** A POST from another loopback address (127.0.0.2): another client IP to the rate limiter. */
function postFrom(localAddress: string, port: number, raw: Buffer, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress, method: 'POST', path: '/webhooks/whatsapp', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(raw);
  });
}

describe('rate limit on unsigned traffic', () => {
  it('answers 429 to an address that keeps failing, before reading a body, while other addresses still pass', async () => {
    const limited = await RelayProcess.start({ env: { RELAY_UNSIGNED_BURST: '5', RELAY_UNSIGNED_RATE_PER_MINUTE: '1' } });
    try {
      const statuses: number[] = [];
      // Unsigned and wrongly signed posts both spend the address's tokens.
      for (let i = 0; i < 8; i += 1) statuses.push((await limited.postWebhook('{}', i % 2 ? { signature: null } : { secret: 'a-wrong-secret-0000' })).status);
      expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
      // A signature header buys no body read from an address that keeps failing: the answer comes
      // before the body has even started (the relay used to wait for all of it, then hash it).
      const socket = net.connect(limited.port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      const started = Date.now();
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      const closed = new Promise((r) => socket.once('close', r));
      socket.write(
        `POST /webhooks/whatsapp HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: ${4 * 1024 * 1024}\r\n` +
          `X-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\n\r\n`,
      );
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(answer.toLowerCase()).toContain('retry-after: 60');
      expect(Date.now() - started).toBeLessThan(1_000);
      // Meta's correctly signed posts come from addresses that never failed: they pass.
      const raw = Buffer.from(JSON.stringify(textMessageWebhook({ phoneNumberId: '1', wamid: 'w', text: 't' })));
      expect(await postFrom('127.0.0.2', limited.port, raw, { 'x-hub-signature-256': signWebhook(raw, limited.appSecret) })).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});
