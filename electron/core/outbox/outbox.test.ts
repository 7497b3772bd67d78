import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CALLBACK_PREFIX, markSent, outboxCounts, type StatusChange } from '../db/repo/outbox';
import { recordStatus } from '../db/repo/statuses';
import { mediaRowForMessage } from '../db/repo/media';
import { replaceTemplates } from '../db/repo/templates';
import type { Database } from '../db/types';
import { createGraphClient } from '../graph/client';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { createTestDb, type TestDb } from '../testing/testDb';
import { codeOf, seedConversation, storeUnappliedStatus } from './outboxFixtures';
import { markRead, sendMedia, sendTemplate, sendText } from './sendService';
import { createOutboxWorker, type OutboxWorker } from './worker';

const TOKEN = 'EAAoutbox-test-token-000';
const PHONE = '110000000000001';
const WABA = '100000000000001';
const PATIENT = '15555550101';
const HOUR = 3600_000;
const logger = pino({ level: 'silent' });

function message(db: Database, id: number) {
  return db.prepare('SELECT wamid, status, error_code, error_title, text FROM messages WHERE id = ?').get(id) as {
    wamid: string | null;
    status: string;
    error_code: number | null;
    error_title: string | null;
    text: string | null;
  };
}


describe('outbox and send service', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let worker: OutboxWorker;
  let clock: number;
  let token: string;
  let changes: StatusChange[];
  let tokenStates: boolean[];
  let conversationId: number;
  let hookSink: Server | null = null;

  beforeEach(async () => {
    t = createTestDb();
    clock = Date.UTC(2026, 10, 22, 10, 0, 0);
    token = TOKEN;
    changes = [];
    tokenStates = [];
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: WABA, now: () => clock });
    await sim.listen();
    sim.noteInbound(PATIENT, clock - HOUR);
    ({ conversationId } = seedConversation(t.db, { waId: PATIENT, phoneNumberId: PHONE, lastInboundAt: clock - HOUR, inboundWamid: 'wamid.PATIENT1' }));
    const getAccessToken = async () => token;
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken, logger, timeoutMs: 2000 });
    worker = createOutboxWorker({
      db: t.db,
      client,
      getAccessToken,
      logger,
      now: () => clock,
      random: () => 0.5,
      policy: { baseMs: 1000, maxMs: 60_000, pausedCheckMs: 0, confirmWindowMs: 10 * 60_000 },
      onStatusChanged: (c) => changes.push(c),
      onTokenStateChanged: (expired) => tokenStates.push(expired),
    });
  });

  afterEach(async () => {
    await worker.stop();
    await sim.close();
    if (hookSink) await new Promise((r) => hookSink!.close(r));
    hookSink = null;
    t.cleanup();
  });

  it('stores the message as pending before sending, then records the wamid Meta assigned', async () => {
    const { messageId, outboxId } = sendText(t.db, { conversationId, text: 'Gerne, bis Donnerstag.', replyToMessageId: 1, now: clock });
    expect(message(t.db, messageId)).toMatchObject({ status: 'pending', wamid: null });
    expect(outboxCounts(t.db).queued).toBe(1);
    expect(sim.sends).toHaveLength(0);

    expect(await worker.runOnce()).toBe(1);
    expect(sim.sends).toHaveLength(1);
    const sent = sim.sends[0]!;
    expect(sent.request).toMatchObject({ to: PATIENT, type: 'text', text: { body: 'Gerne, bis Donnerstag.' }, context: { message_id: 'wamid.PATIENT1' } });
    expect(sent.callbackData).toBe(`${CALLBACK_PREFIX}${outboxId}`);
    expect(message(t.db, messageId)).toMatchObject({ status: 'sent', wamid: sent.wamid });
    expect(changes).toEqual([{ messageId, conversationId, status: 'sent', errorCode: null }]);
    expect(await worker.runOnce()).toBe(0);
    expect(sim.sends).toHaveLength(1);
    // Once settled, the outbox keeps no second copy of the text or the number.
    const settled = t.db.prepare('SELECT state, request_json FROM outbox WHERE id = ?').get(outboxId) as { state: string; request_json: string };
    expect(settled.state).toBe('sent');
    expect(settled.request_json).not.toContain('Donnerstag');
    expect(settled.request_json).not.toContain(PATIENT);
  });

  it('prunes settled rows after a week and keeps the message', async () => {
    const { messageId } = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    await worker.runOnce();
    expect(outboxCounts(t.db).sent).toBe(1);
    clock += 8 * 24 * HOUR;
    await worker.runOnce();
    expect(outboxCounts(t.db).sent).toBe(0);
    expect(message(t.db, messageId).status).toBe('sent');
  });

  it('retries a rate-limited send (130429) with backoff, then succeeds once', async () => {
    sim.inject('messages', { type: 'graph', code: 130429, message: '(#130429) Rate limit hit' });
    const { messageId } = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    await worker.runOnce();
    expect(sim.hits.messages).toBe(1);
    expect(sim.sends).toHaveLength(0);
    expect(message(t.db, messageId).status).toBe('pending');
    const row = t.db.prepare('SELECT state, next_attempt_at, last_error_code FROM outbox').get() as { state: string; next_attempt_at: number; last_error_code: string };
    expect(row).toMatchObject({ state: 'queued', last_error_code: 'RATE_LIMITED' });
    // Backoff with jitter: between half and all of the first step (1 s here).
    expect(row.next_attempt_at - clock).toBeGreaterThanOrEqual(500);
    expect(row.next_attempt_at - clock).toBeLessThanOrEqual(1000);

    await worker.runOnce();
    expect(sim.hits.messages).toBe(1); // not due yet
    clock = row.next_attempt_at;
    await worker.runOnce();
    expect(sim.sends).toHaveLength(1);
    expect(message(t.db, messageId)).toMatchObject({ status: 'sent', wamid: sim.sends[0]!.wamid });
  });

  it('pauses sending on 190 and surfaces it, until the token changes', async () => {
    sim.rotateToken('EAAreplacement-token-111');
    const { messageId } = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    sendText(t.db, { conversationId, text: 'Noch etwas', now: clock });
    await worker.runOnce();
    expect(worker.tokenExpired).toBe(true);
    expect(tokenStates).toEqual([true]);
    expect(sim.hits.messages).toBe(1); // paused after the first refusal, not once per row
    expect(message(t.db, messageId).status).toBe('pending');
    expect(outboxCounts(t.db)).toMatchObject({ queued: 2, failed: 0 });

    await worker.runOnce();
    expect(sim.hits.messages).toBe(1); // same token: still paused, nothing sent

    token = 'EAAreplacement-token-111';
    await worker.runOnce();
    expect(worker.tokenExpired).toBe(false);
    expect(tokenStates).toEqual([true, false]);
    expect(sim.sends.map((s) => (s.request as { text: { body: string } }).text.body)).toEqual(['Hallo', 'Noch etwas']);
  });

  it('marks the message failed with the reason on 131047, and on 100', async () => {
    sim.inject('messages', { type: 'graph', code: 131047, message: '(#131047) Re-engagement message' });
    const a = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    await worker.runOnce();
    expect(message(t.db, a.messageId)).toMatchObject({ status: 'failed', error_code: 131047, error_title: 'Re-engagement message', wamid: null });
    expect(changes).toContainEqual({ messageId: a.messageId, conversationId, status: 'failed', errorCode: 131047 });

    sim.inject('messages', { type: 'graph', code: 100, message: '(#100) Invalid parameter' });
    const b = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    await worker.runOnce();
    expect(message(t.db, b.messageId)).toMatchObject({ status: 'failed', error_code: 100, error_title: 'Invalid parameter' });
    expect(sim.sends).toHaveLength(0);
  });

  it("applies a failed status that beat the Graph API's answer when the wamid is known, with Meta's code (131050 reaches privacy)", () => {
    const { messageId, outboxId } = sendText(t.db, { conversationId, text: 'Hallo', now: clock });
    // The status webhook arrives first: its message is not known by that wamid yet, so it waits.
    const early = recordStatus(t.db, { wamid: 'wamid.EARLY', status: 'failed', statusAt: clock, errorCode: 131050, errorTitle: 'Stopped marketing messages', raw: {} }, clock);
    expect(early).toMatchObject({ recorded: true, pending: true, change: null });
    // Then Meta's answer: the message gets its wamid, the waiting status applies, and the change says why.
    expect(markSent(t.db, outboxId, 'wamid.EARLY', clock + 1)).toEqual({ messageId, conversationId, status: 'failed', errorCode: 131050 });
    expect(message(t.db, messageId)).toMatchObject({ status: 'failed', error_code: 131050, wamid: 'wamid.EARLY' });
  });

  it('refuses free text outside the 24-hour window with WINDOW_CLOSED, and a template goes out', async () => {
    const stale = seedConversation(t.db, { waId: '15555550177', phoneNumberId: PHONE, lastInboundAt: clock - 25 * HOUR });
    const before = outboxCounts(t.db);
    expect(codeOf(() => sendText(t.db, { conversationId: stale.conversationId, text: 'Hallo', now: clock }))).toBe('WINDOW_CLOSED');
    expect(codeOf(() => sendMedia(t.db, { conversationId: stale.conversationId, bytes: Buffer.from('x'), mimeType: 'image/jpeg', now: clock }))).toBe('WINDOW_CLOSED');
    expect(outboxCounts(t.db)).toEqual(before);
    expect((t.db.prepare('SELECT count(*) AS n FROM messages WHERE conversation_id = ?').get(stale.conversationId) as { n: number }).n).toBe(1);

    sim.setTemplates([{ name: 'appointment_reminder', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihr Termin ist am {{1}} um {{2}}.' }] }]);
    replaceTemplates(t.db, [{ id: '1', name: 'appointment_reminder', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihr Termin ist am {{1}} um {{2}}.' }] }], clock);
    expect(codeOf(() => sendTemplate(t.db, { conversationId: stale.conversationId, name: 'appointment_reminder', language: 'de', parameters: ['24.11.'], now: clock }))).toBe(
      'VALIDATION_FAILED',
    );
    const { messageId } = sendTemplate(t.db, { conversationId: stale.conversationId, name: 'appointment_reminder', language: 'de', parameters: ['24.11.', '10:00'], now: clock });
    expect(message(t.db, messageId).text).toBe('Ihr Termin ist am 24.11. um 10:00.');
    await worker.runOnce();
    expect(sim.sends).toHaveLength(1);
    expect(sim.sends[0]!.request).toMatchObject({
      to: '15555550177',
      type: 'template',
      template: { name: 'appointment_reminder', language: { code: 'de' }, components: [{ type: 'body', parameters: [{ type: 'text', text: '24.11.' }, { type: 'text', text: '10:00' }] }] },
    });
    expect(message(t.db, messageId).status).toBe('sent');
  });

  it('keeps a patient’s messages in order while an earlier one waits for a retry', async () => {
    sim.inject('messages', { type: 'http', status: 503 });
    const first = sendText(t.db, { conversationId, text: 'eins', now: clock });
    const second = sendText(t.db, { conversationId, text: 'zwei', now: clock });
    await worker.runOnce();
    expect(sim.sends).toHaveLength(0);
    expect(message(t.db, second.messageId).status).toBe('pending');
    clock += 2000;
    await worker.runOnce();
    expect(sim.sends.map((s) => (s.request as { text: { body: string } }).text.body)).toEqual(['eins', 'zwei']);
    expect(message(t.db, first.messageId).status).toBe('sent');
  });

  it('never resends when the answer is lost; the status webhook settles it, or staff are told', async () => {
    const received: Array<Record<string, unknown>> = [];
    hookSink = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const status = JSON.parse(body).entry[0].changes[0].value.statuses[0];
        received.push(status);
        storeUnappliedStatus(t.db, status, clock);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hookSink!.listen(0, '127.0.0.1', r));
    const hooked = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: PHONE,
      wabaId: WABA,
      appSecret: 'secret',
      webhookUrl: `http://127.0.0.1:${(hookSink.address() as AddressInfo).port}/`,
      now: () => clock,
      enforceWindow: false,
    });
    await hooked.listen();
    const client = createGraphClient({ baseUrl: hooked.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    const w = createOutboxWorker({ db: t.db, client, getAccessToken: async () => TOKEN, logger, now: () => clock, random: () => 0.5, policy: { confirmWindowMs: 60_000 } });
    try {
      hooked.inject('messages', { type: 'dropAfterAccept' });
      const a = sendText(t.db, { conversationId, text: 'eins', now: clock });
      const b = sendText(t.db, { conversationId, text: 'zwei', now: clock });
      hooked.inject('messages', { type: 'dropAfterAccept' }); // for b, and b's webhook never comes
      await w.runOnce();
      expect(hooked.sends).toHaveLength(2);
      expect(outboxCounts(t.db).unconfirmed).toBe(2);
      expect(message(t.db, a.messageId).status).toBe('pending');

      await hooked.postStatus(hooked.sends[0]!.wamid, 'sent');
      await hooked.postStatus(hooked.sends[0]!.wamid, 'delivered');
      await w.runOnce();
      expect(message(t.db, a.messageId)).toMatchObject({ status: 'delivered', wamid: hooked.sends[0]!.wamid });
      expect(hooked.sends).toHaveLength(2);

      clock += 61_000;
      await w.runOnce();
      expect(hooked.sends).toHaveLength(2);
      const lost = message(t.db, b.messageId);
      expect(lost.status).toBe('failed');
      expect(lost.error_title).toMatch(/did not confirm/);

      // A late webhook still settles it: the patient did get it.
      await hooked.postStatus(hooked.sends[1]!.wamid, 'read');
      await w.runOnce();
      expect(message(t.db, b.messageId)).toMatchObject({ status: 'read', wamid: hooked.sends[1]!.wamid, error_title: null });
      expect(received.every((s) => String(s.biz_opaque_callback_data).startsWith(CALLBACK_PREFIX))).toBe(true);
    } finally {
      await w.stop();
      await hooked.close();
    }
  });

  it('uploads a file, then sends it by media id', async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(20_000, 1)]);
    const { messageId } = sendMedia(t.db, { conversationId, bytes: jpeg, mimeType: 'image/jpeg', caption: 'Anfahrt', now: clock });
    expect(codeOf(() => sendMedia(t.db, { conversationId, bytes: Buffer.alloc(6 * 1024 * 1024), mimeType: 'image/png', now: clock }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => sendMedia(t.db, { conversationId, bytes: Buffer.from('x'), mimeType: 'application/zip', now: clock }))).toBe('VALIDATION_FAILED');
    sim.inject('media.upload', { type: 'http', status: 502 });
    await worker.runOnce();
    expect(sim.uploads).toHaveLength(0);
    clock += 2000;
    await worker.runOnce();
    expect(sim.uploads).toHaveLength(1);
    expect(sim.uploads[0]!.size).toBe(jpeg.length);
    expect(sim.sends[0]!.request).toMatchObject({ type: 'image', image: { id: sim.uploads[0]!.id, caption: 'Anfahrt' } });
    const row = t.db.prepare('SELECT m.status, m.media_id, x.state, length(x.content) AS size FROM messages m JOIN media x ON x.message_id = m.id WHERE m.id = ?').get(messageId);
    expect(row).toEqual({ status: 'sent', media_id: sim.uploads[0]!.id, state: 'stored', size: jpeg.length });
    // The bubble finds the file through its message (the media row is not rewritten with Meta's id),
    // and the 5 MB row's checkpoint was held off the send, then given back.
    const mediaRow = (t.db.prepare('SELECT id FROM media WHERE message_id = ?').get(messageId) as { id: number }).id;
    expect(mediaRowForMessage(t.db, { messageId, metaMediaId: sim.uploads[0]!.id })).toMatchObject({ id: mediaRow, state: 'stored', size: jpeg.length });
    expect(t.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('reads the token only for the requests on the way to the tick, and stores the answer at the connection\'s own durability afterwards', async () => {
    let reads = 0;
    const counted = async () => {
      reads += 1;
      return token;
    };
    let atSend: unknown = null;
    // When the send request leaves, Meta's media id and the claim are already committed (one commit).
    const fetchSpy: typeof fetch = (input, init) => {
      if (String(input).endsWith('/messages')) {
        atSend = t.db
          .prepare(`SELECT o.state, m.media_id IS NOT NULL AS has_media_id FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.kind = 'media'`)
          .get();
      }
      return fetch(input, init);
    };
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: counted, logger, fetch: fetchSpy });
    const w = createOutboxWorker({ db: t.db, client, getAccessToken: counted, logger, now: () => clock, onStatusChanged: (c) => changes.push(c) });
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(20_000, 1)]);
    const { messageId } = sendMedia(t.db, { conversationId, bytes: jpeg, mimeType: 'image/jpeg', now: clock });
    await w.runOnce();
    expect(changes).toEqual([{ messageId, conversationId, status: 'sent', errorCode: null }]);
    expect(atSend).toEqual({ state: 'sending', has_media_id: 1 });
    expect(reads).toBe(2); // the upload's and the send's request, none for bookkeeping
    expect(t.db.pragma('synchronous', { simple: true })).toBe(2); // FULL again after the relaxed commit of Meta's answer
  });

  it('holds automatic checkpoints while a stored file waits to be sent, and gives them back once it is', async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(20_000, 1)]);
    sendMedia(t.db, { conversationId, bytes: jpeg, mimeType: 'image/jpeg', now: clock });
    expect(t.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await worker.runOnce();
    expect(sim.sends).toHaveLength(1);
    expect(t.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('marks the newest inbound message read once', async () => {
    expect(markRead(t.db, { conversationId, now: clock })).toEqual({ queued: true });
    expect(markRead(t.db, { conversationId, now: clock })).toEqual({ queued: false });
    await worker.runOnce();
    expect(sim.reads).toEqual(['wamid.PATIENT1']);
    expect((t.db.prepare('SELECT unread_count FROM conversations WHERE id = ?').get(conversationId) as { unread_count: number }).unread_count).toBe(0);
  });
});
