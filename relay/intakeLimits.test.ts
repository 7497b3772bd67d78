import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from './testing/relayProcess';
import { signWebhook, textMessageChange, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

/**
 * Limits that keep a flood of requests from exhausting the relay's memory: the budget of body
 * bytes held at once, the connection cap, and the refusal of a body whose sealed part no appliance
 * would take. Real relay processes on loopback.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw HTTP client: writes what it is told, collects the answer, reports when the server closed. */
async function rawClient(port: number): Promise<{ socket: net.Socket; answer: () => string; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let answer = '';
  socket.on('data', (d) => (answer += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, answer: () => answer, closed };
}

const postHead = (length: number | 'chunked') =>
  `POST /webhooks/whatsapp HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n` +
  (length === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${length}\r\n`) +
  `X-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\n\r\n`;

describe('in-flight body budget', () => {
  const BUDGET = 100 * 1024;
  let relay: RelayProcess;
  let appliance: TestAppliance;
  const PHONE = '510000000000001';

  beforeAll(async () => {
    relay = await RelayProcess.start({
      env: { RELAY_BODY_LIMIT_BYTES: String(64 * 1024), RELAY_MAX_INFLIGHT_BODY_BYTES: String(BUDGET), RELAY_REQUEST_TIMEOUT_MS: '20000' },
    });
    await relay.createTenant({ tenantId: 'clinic-budget', phoneNumberIds: [PHONE] });
    appliance = TestAppliance.create();
    await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-budget'));
    await appliance.connect(relay.wsUrl);
  });
  afterAll(async () => {
    appliance?.close();
    await relay?.stop();
  });

  it('refuses with 503 before reading a body the budget cannot hold, while a signed webhook that fits succeeds', async () => {
    // A slow upload that declared 60 KB: it holds that much of the budget from its first byte.
    const slow = await rawClient(relay.port);
    slow.socket.write(postHead(60_000) + '{"object":');
    await sleep(100);
    expect(await relay.metric('relay_inflight_body_bytes')).toBe(60_000);

    // Another 60 KB would pass the budget: answered at once, nothing read, connection closed.
    const refused = await rawClient(relay.port);
    const started = Date.now();
    refused.socket.write(postHead(60_000));
    await refused.closed;
    expect(refused.answer()).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused.answer().toLowerCase()).toContain('retry-after:');
    expect(refused.answer().toLowerCase()).toContain('connection: close');
    expect(Date.now() - started).toBeLessThan(1_000);

    // Without a Content-Length the body is counted as it arrives and cut off where it passes.
    const chunked = await rawClient(relay.port);
    chunked.socket.write(postHead('chunked'));
    for (let i = 0; i < 4 && !chunked.socket.destroyed; i += 1) {
      chunked.socket.write(`${(16 * 1024).toString(16)}\r\n${'x'.repeat(16 * 1024)}\r\n`);
      await sleep(20);
    }
    await chunked.closed;
    expect(chunked.answer()).toMatch(/^HTTP\/1\.1 503 /);
    expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'busy' })).toBe(2);

    // Meta's webhook fits beside the slow upload and goes through.
    const small = await relay.postWebhook(textMessageWebhook({ phoneNumberId: PHONE, wamid: 'wamid.budget-1', text: 'fits' }));
    expect(small.status).toBe(200);

    // Once the slow client is gone its share is free again: a webhook of 60 KB now fits.
    slow.socket.destroy();
    await slow.closed;
    for (let i = 0; (await relay.metric('relay_inflight_body_bytes')) !== 0; i += 1) {
      if (i > 60) throw new Error('the slow upload\'s share of the budget was never released');
      await sleep(50);
    }
    const big = textMessageWebhook({ phoneNumberId: PHONE, wamid: 'wamid.budget-2', text: 'y'.repeat(59_000) });
    const bigRaw = Buffer.from(JSON.stringify(big));
    expect(bigRaw.length).toBeGreaterThan(59_000);
    expect((await relay.postWebhook(bigRaw)).status).toBe(200);
    await appliance.waitForDeliveries(2);
    expect(appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.messages[0].id)).toEqual(['wamid.budget-1', 'wamid.budget-2']);
  });
  it('verifies and delivers a signed webhook whose body arrives in pieces, with or without a Content-Length', async () => {
    // Most bodies arrive in one read and are used as they are; one split across reads must be
    // joined byte for byte, or its signature would fail and Meta would retry it for days.
    const delivered = appliance.deliveries.length;
    const answers: string[] = [];
    const sent: string[] = [];
    for (const [i, framing] of (['length', 'chunked'] as const).entries()) {
      const raw = Buffer.from(JSON.stringify(textMessageWebhook({ phoneNumberId: PHONE, wamid: `wamid.pieces-${i}`, text: `in pieces ${'z'.repeat(3_000)}` })));
      sent.push(raw.toString('utf8'));
      const pieces = [raw.subarray(0, 100), raw.subarray(100, 2_000), raw.subarray(2_000)];
      const client = await rawClient(relay.port);
      client.socket.write(
        `POST /webhooks/whatsapp HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nConnection: close\r\n` +
          (framing === 'length' ? `Content-Length: ${raw.length}\r\n` : 'Transfer-Encoding: chunked\r\n') +
          `X-Hub-Signature-256: ${signWebhook(raw, relay.appSecret)}\r\n\r\n`,
      );
      for (const piece of pieces) {
        await sleep(30);
        client.socket.write(framing === 'length' ? piece : Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      }
      if (framing === 'chunked') client.socket.write('0\r\n\r\n');
      await client.closed;
      answers.push(client.answer().split('\r\n')[0]!);
    }
    expect(answers).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    await appliance.waitForDeliveries(delivered + 2);
    expect(appliance.deliveries.slice(delivered).map((d) => d.plaintext.kind)).toEqual(['meta', 'meta']);
    // Exactly the bytes Meta signed, so the appliance can check the HMAC itself.
    expect(appliance.deliveries.slice(delivered).map((d) => d.body)).toEqual(sent);
  });
});

describe('connection cap and undeliverable bodies', () => {
  let relay: RelayProcess;
  const PHONE = '520000000000001';

  beforeAll(async () => {
    relay = await RelayProcess.start({ env: { RELAY_MAX_CONNECTIONS: '3' } });
    await relay.createTenant({ tenantId: 'clinic-cap', phoneNumberIds: [PHONE] });
    await TestAppliance.create().enrol(relay.url, await relay.issueEnrolmentCode('clinic-cap'));
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('closes connections past RELAY_MAX_CONNECTIONS at once and counts them', async () => {
    // Three open connections (or two, if the enrolment's keep-alive connection is still open) fill the cap.
    const held = [];
    for (let i = 0; i < 3; i += 1) held.push(await rawClient(relay.port));
    const extra = await rawClient(relay.port);
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n');
    await extra.closed;
    expect(extra.answer()).toBe('');
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await sleep(50);
    const after = await rawClient(relay.port);
    after.socket.write('GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n');
    await after.closed;
    expect(after.answer()).toMatch(/^HTTP\/1\.1 200 /);
    expect(await relay.metric('relay_connections_dropped_total')).toBeGreaterThanOrEqual(1);
  });

  it("answers 413 and keeps nothing when a clinic's sealed part would pass the largest frame", async () => {
    // Exponent numbers grow when the relay re-serialises a mixed batch (1e20 → 21 digits): a
    // 4.5 MB body under the cap whose clinic part would exceed what appliances accept.
    const numbers = Array.from({ length: 900_000 }, () => '1e20').join(',');
    const change = JSON.stringify(textMessageChange({ phoneNumberId: PHONE, wamid: 'wamid.NUM', text: 'n' })).replace('"field"', `"n":[${numbers}],"field"`);
    const other = JSON.stringify(textMessageChange({ phoneNumberId: '999', wamid: 'wamid.OTHER', text: 'x' }));
    const raw = Buffer.from(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[${change},${other}]}]}`);
    const res = await relay.postWebhook(raw, { signature: signWebhook(raw, relay.appSecret), headers: { connection: 'close' } });
    expect(res.status).toBe(413);
    expect(relay.queued('clinic-cap')).toBe(0);
    expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'undeliverable' })).toBe(1);
  });
});
