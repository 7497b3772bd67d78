import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../testing/graphSimulator';
import { decodeFileBase64 } from '../media/base64';
import { createGraphClient, type GraphClient } from './client';
import { GraphError, MediaTooLargeError } from './errors';

const TOKEN = 'EAAtest-token-0123456789';
const PHONE = '110000000000001';
const WABA = '100000000000001';
const PATIENT = '15555550101';
const APP_SECRET = 'simulator-app-secret';
const logger = pino({ level: 'silent' });

const templates: SimTemplate[] = [
  { name: 'appointment_reminder', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihr Termin ist am {{1}} um {{2}}.' }] },
  { name: 'appointment_reminder', language: 'en_US', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Your appointment is on {{1}} at {{2}}.' }] },
  { name: 'results_ready', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihre Befunde liegen vor.' }] },
  { name: 'promo', language: 'de', status: 'REJECTED', category: 'MARKETING', components: [{ type: 'BODY', text: 'Angebot' }] },
  { name: 'callback', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Bitte rufen Sie uns an.' }] },
];

/** A stand-in for the relay's webhook endpoint: keeps the raw bytes and the signature header. */
async function webhookSink(): Promise<{ url: string; server: Server; received: Array<{ raw: Buffer; signature: string }> }> {
  const received: Array<{ raw: Buffer; signature: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ raw: Buffer.concat(chunks), signature: String(req.headers['x-hub-signature-256'] ?? '') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`, server, received };
}

async function expectGraphError(p: Promise<unknown>): Promise<GraphError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GraphError);
  return err as GraphError;
}

describe('Graph API simulator and client', () => {
  let sim: GraphSimulator;
  let client: GraphClient;
  let sink: Awaited<ReturnType<typeof webhookSink>>;
  let token = TOKEN;

  beforeEach(async () => {
    sink = await webhookSink();
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: WABA, appSecret: APP_SECRET, webhookUrl: sink.url, templates, templatePageSize: 2 });
    await sim.listen();
    token = TOKEN;
    client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => token, logger, timeoutMs: 2000 });
    sim.noteInbound(PATIENT);
  });

  afterEach(async () => {
    await sim.close();
    await new Promise((r) => sink.server.close(r));
  });

  it('answers an unknown token with 401 and Graph error 190 (no subcode), and a retired one as expired (463)', async () => {
    const res = await fetch(`${sim.url}/v23.0/${PHONE}/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', to: PATIENT, type: 'text', text: { body: 'x' } }),
    });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'OAuthException', code: 190 });
    expect(body.error.error_subcode).toBeUndefined();
    expect(typeof body.error.message).toBe('string');
    expect(typeof body.error.fbtrace_id).toBe('string');

    sim.rotateToken('EAAnew-token-9876543210');
    const err = await expectGraphError(client.sendText({ phoneNumberId: PHONE, to: PATIENT, body: 'Hallo' }));
    expect(err.kind).toBe('token_expired');
    expect(err.code).toBe('WHATSAPP_TOKEN_EXPIRED');
    expect(err.metaCode).toBe(190);
    expect(sim.sends).toHaveLength(0);

    token = 'EAAnew-token-9876543210';
    await expect(client.sendText({ phoneNumberId: PHONE, to: PATIENT, body: 'Hallo' })).resolves.toMatchObject({ waId: PATIENT });
  });

  it('sends text with a reply context and returns the wamid Meta assigned', async () => {
    const sent = await client.sendText({ phoneNumberId: PHONE, to: `+${PATIENT}`, body: 'Gerne, Donnerstag 10 Uhr?', replyToWamid: 'wamid.ORIGINAL', callbackData: 'outbox:7' });
    expect(sent.wamid).toMatch(/^wamid\./);
    expect(sent.waId).toBe(PATIENT);
    expect(sim.sends).toHaveLength(1);
    const rec = sim.sends[0]!;
    expect(rec.wamid).toBe(sent.wamid);
    expect(rec.request).toMatchObject({ type: 'text', to: `+${PATIENT}`, context: { message_id: 'wamid.ORIGINAL' }, text: { body: 'Gerne, Donnerstag 10 Uhr?' } });
    expect(rec.callbackData).toBe('outbox:7');
  });

  it('sends a template with parameters, and Meta refuses a wrong parameter count', async () => {
    const sent = await client.sendTemplate({
      phoneNumberId: PHONE,
      to: PATIENT,
      name: 'appointment_reminder',
      language: 'de',
      components: [{ type: 'body', parameters: [{ type: 'text', text: '24.11.' }, { type: 'text', text: '10:00' }] }],
    });
    expect(sim.sends.at(-1)).toMatchObject({ wamid: sent.wamid, type: 'template' });
    expect(sim.sends.at(-1)!.request).toMatchObject({ template: { name: 'appointment_reminder', language: { code: 'de' } } });

    const err = await expectGraphError(
      client.sendTemplate({ phoneNumberId: PHONE, to: PATIENT, name: 'appointment_reminder', language: 'de', components: [{ type: 'body', parameters: [{ type: 'text', text: 'x' }] }] }),
    );
    expect(err).toMatchObject({ kind: 'permanent', code: 'WHATSAPP_REJECTED', metaCode: 132000 });
    const missing = await expectGraphError(client.sendTemplate({ phoneNumberId: PHONE, to: PATIENT, name: 'promo', language: 'de' }));
    expect(missing.metaCode).toBe(132001);
  });

  it('uploads media as multipart, sends it by id, and the bytes come back intact and hash-checked', async () => {
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(50_000, 7)]);
    const { mediaId } = await client.uploadMedia({ phoneNumberId: PHONE, bytes: pdf, mimeType: 'application/pdf', filename: 'befund.pdf' });
    expect(sim.uploads).toEqual([{ id: mediaId, mimeType: 'application/pdf', size: pdf.length, filename: 'befund.pdf' }]);

    const sent = await client.sendMedia({ phoneNumberId: PHONE, to: PATIENT, kind: 'document', mediaId, caption: 'Ihr Befund', filename: 'befund.pdf' });
    expect(sim.sends.at(-1)).toMatchObject({ wamid: sent.wamid, type: 'document' });
    expect(sim.sends.at(-1)!.request).toMatchObject({ document: { id: mediaId, caption: 'Ihr Befund', filename: 'befund.pdf' } });

    const info = await client.getMediaInfo(mediaId);
    expect(info).toMatchObject({ id: mediaId, mimeType: 'application/pdf', fileSize: pdf.length });
    expect(info.sha256!.equals(createHash('sha256').update(pdf).digest())).toBe(true);
    const bytes = await client.downloadMedia(info.url, { maxBytes: 100 * 1024 * 1024 });
    expect(bytes.equals(pdf)).toBe(true);

    await expect(client.downloadMedia(info.url, { maxBytes: 10_000 })).rejects.toBeInstanceOf(MediaTooLargeError);
    await expect(client.sendMedia({ phoneNumberId: PHONE, to: PATIENT, kind: 'image', mediaId: '999999' })).rejects.toMatchObject({ metaCode: 100 });
  });

  it('keeps a filename with quotes and line breaks inside its own part, and a file holding multipart lines intact', async () => {
    // Bytes that look like a part boundary and headers must arrive as bytes, not split the body.
    const tricky = Buffer.concat([Buffer.from('%PDF-1.4\r\n------clinic-inbox-\r\nContent-Disposition: form-data; name="type"\r\n\r\nimage/png\r\n'), Buffer.alloc(20_000, 0x2d)]);
    const { mediaId } = await client.uploadMedia({ phoneNumberId: PHONE, bytes: tricky, mimeType: 'application/pdf', filename: 'brief "a"\r\ntype: x.pdf' });
    const upload = sim.uploads.find((u) => u.id === mediaId)!;
    expect(upload).toMatchObject({ mimeType: 'application/pdf', size: tricky.length });
    // Escaped as FormData escapes it (%22, %0D, %0A), which the receiving parser turns back.
    expect(upload.filename).toBe('brief "a"\r\ntype: x.pdf');
    const info = await client.getMediaInfo(mediaId);
    expect((await client.downloadMedia(info.url, { maxBytes: 100_000 })).equals(tricky)).toBe(true);
  });

  it('uploads a 5 MB image from the shared memory the composer decodes it into, with a Content-Length, intact', async () => {
    const jpeg = randomBytes(5 * 1024 * 1024 - 64 * 1024);
    jpeg.set([0xff, 0xd8, 0xff, 0xe0], 0);
    const shared = decodeFileBase64(jpeg.toString('base64'));
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    const lengths: Array<string | null> = [];
    const watched = createGraphClient({
      baseUrl: sim.url,
      apiVersion: 'v23.0',
      getAccessToken: async () => token,
      logger,
      // Meta is not promised to take a chunked upload: the request says its length up front.
      fetch: (input, init) => {
        lengths.push(new Headers(init?.headers).get('content-length'));
        return fetch(input, init);
      },
    });
    const { mediaId } = await watched.uploadMedia({ phoneNumberId: PHONE, bytes: shared, mimeType: 'image/jpeg', filename: 'verwijzing.jpg' });
    expect(sim.uploads.find((u) => u.id === mediaId)).toMatchObject({ mimeType: 'image/jpeg', size: jpeg.length, filename: 'verwijzing.jpg' });
    expect(Number(lengths[0])).toBeGreaterThan(jpeg.length);
    const info = await client.getMediaInfo(mediaId);
    expect(info.sha256!.equals(createHash('sha256').update(jpeg).digest())).toBe(true);
  });

  it('refuses to upload a type WhatsApp does not take', async () => {
    const err = await expectGraphError(client.uploadMedia({ phoneNumberId: PHONE, bytes: Buffer.from('MZ'), mimeType: 'application/x-msdownload', filename: 'x.exe' }));
    expect(err).toMatchObject({ kind: 'permanent', metaCode: 131053 });
  });

  it('refuses media URLs that expired or point outside Meta', async () => {
    let clock = Date.now();
    const timed = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: WABA, now: () => clock, mediaUrlTtlMs: 5 * 60_000 });
    await timed.listen();
    try {
      const c = createGraphClient({ baseUrl: timed.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
      const id = timed.addMedia({ bytes: Buffer.from('jpegbytes'), mimeType: 'image/jpeg' });
      const info = await c.getMediaInfo(id);
      clock += 6 * 60_000;
      await expect(c.downloadMedia(info.url, { maxBytes: 1000 })).rejects.toMatchObject({ kind: 'permanent', httpStatus: 404 });
      const fresh = await c.getMediaInfo(id);
      await expect(c.downloadMedia(fresh.url, { maxBytes: 1000 })).resolves.toEqual(Buffer.from('jpegbytes'));
      await expect(c.downloadMedia('https://evil.example/steal', { maxBytes: 1000 })).rejects.toMatchObject({ title: 'Untrusted media URL' });
    } finally {
      await timed.close();
    }
  });

  it('marks an inbound message as read', async () => {
    await client.markRead({ phoneNumberId: PHONE, wamid: 'wamid.INBOUND1' });
    expect(sim.reads).toEqual(['wamid.INBOUND1']);
    expect(sim.sends).toHaveLength(0);
  });

  it('lists every template across pages, approved only', async () => {
    const all = await client.listTemplates({ wabaId: WABA, status: 'APPROVED' });
    expect(all.map((t) => `${t.name}/${t.language}`)).toEqual(['appointment_reminder/de', 'appointment_reminder/en_US', 'results_ready/de', 'callback/de']);
    expect(sim.hits.templates).toBe(2);
    const everything = await client.listTemplates({ wabaId: WABA });
    expect(everything).toHaveLength(5);
  });

  it('classifies rate limits, 5xx and dropped connections as retryable and 100 as permanent', async () => {
    const send = () => client.sendText({ phoneNumberId: PHONE, to: PATIENT, body: 'x' });
    sim.inject('messages', { type: 'graph', code: 130429, message: '(#130429) Rate limit hit' });
    expect(await expectGraphError(send())).toMatchObject({ kind: 'retryable', code: 'RATE_LIMITED', metaCode: 130429 });
    sim.inject('messages', { type: 'graph', code: 131056, message: '(#131056) (Business Account, Consumer Account) pair rate limit hit' });
    expect(await expectGraphError(send())).toMatchObject({ kind: 'retryable', code: 'RATE_LIMITED', metaCode: 131056 });
    sim.inject('messages', { type: 'http', status: 503 });
    expect(await expectGraphError(send())).toMatchObject({ kind: 'retryable', code: 'UNAVAILABLE', httpStatus: 503 });
    sim.inject('messages', { type: 'drop' });
    // The socket closed after the request went out: Meta may have acted on it.
    expect(await expectGraphError(send())).toMatchObject({ kind: 'retryable', code: 'UNAVAILABLE', metaCode: null, maybeDelivered: true });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = createGraphClient({ baseUrl: `http://127.0.0.1:${deadPort}`, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    expect(await expectGraphError(refused.sendText({ phoneNumberId: PHONE, to: PATIENT, body: 'x' }))).toMatchObject({ kind: 'retryable', maybeDelivered: false });
    sim.inject('messages', { type: 'graph', code: 100, message: '(#100) Invalid parameter' });
    const bad = await expectGraphError(send());
    expect(bad).toMatchObject({ kind: 'permanent', code: 'WHATSAPP_REJECTED', metaCode: 100, title: 'Invalid parameter' });
    expect(sim.sends).toHaveLength(0);
    await expect(send()).resolves.toMatchObject({ waId: PATIENT });
  });

  it('posts signed status webhooks in Meta compact JSON, echoing biz_opaque_callback_data', async () => {
    const sent = await client.sendText({ phoneNumberId: PHONE, to: PATIENT, body: 'Grüße / bis bald', callbackData: 'outbox:42' });
    expect(await sim.postStatus(sent.wamid, 'delivered')).toBe(200);
    const hook = sink.received.at(-1)!;
    const expected = createHmac('sha256', APP_SECRET).update(hook.raw).digest();
    expect(timingSafeEqual(Buffer.from(hook.signature.replace('sha256=', ''), 'hex'), expected)).toBe(true);
    const text = hook.raw.toString('utf8');
    expect(text).not.toContain('\n');
    const body = JSON.parse(text);
    const status = body.entry[0].changes[0].value.statuses[0];
    expect(body.entry[0].changes[0].value.metadata.phone_number_id).toBe(PHONE);
    expect(status).toMatchObject({ id: sent.wamid, status: 'delivered', recipient_id: PATIENT, biz_opaque_callback_data: 'outbox:42' });
  });

  it('accepts free text outside the 24-hour window, then reports 131047 as a failed status', async () => {
    const stranger = '15555550199';
    const sent = await client.sendText({ phoneNumberId: PHONE, to: stranger, body: 'Hallo' });
    await expect.poll(() => sink.received.length).toBe(1);
    const status = JSON.parse(sink.received[0]!.raw.toString('utf8')).entry[0].changes[0].value.statuses[0];
    expect(status).toMatchObject({ id: sent.wamid, status: 'failed', errors: [{ code: 131047, title: 'Re-engagement message' }] });
  });

  it('posts inbound patient messages with escaped non-ASCII text and media references', async () => {
    const { wamid, status } = await sim.postInbound({ from: PATIENT, name: 'Jürgen', text: 'Grüße/Termin' });
    expect(status).toBe(200);
    const raw = sink.received.at(-1)!.raw.toString('utf8');
    expect(raw).toContain('Gr\\u00fc\\u00dfe\\/Termin');
    const msg = JSON.parse(raw).entry[0].changes[0].value.messages[0];
    expect(msg).toMatchObject({ id: wamid, from: PATIENT, type: 'text', text: { body: 'Grüße/Termin' } });

    const mediaId = sim.addMedia({ bytes: Buffer.from('imagebytes'), mimeType: 'image/jpeg' });
    await sim.postInbound({ from: PATIENT, name: 'Jürgen', media: { kind: 'image', mediaId, caption: 'Rezept' } });
    const img = JSON.parse(sink.received.at(-1)!.raw.toString('utf8')).entry[0].changes[0].value.messages[0];
    expect(img.image).toMatchObject({ id: mediaId, mime_type: 'image/jpeg', sha256: createHash('sha256').update('imagebytes').digest('base64') });
  });
});
