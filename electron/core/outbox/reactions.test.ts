import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listThread } from '../db/repo/messages';
import { createGraphClient } from '../graph/client';
import { eraseContact } from '../privacy/erasure';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { startIngestSink, type IngestSink } from '../testing/ingestSink';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { createTestDb, type TestDb } from '../testing/testDb';
import { rpc, signIn } from '../testing/users';
import { REACTION_MAX_AGE_MS } from '../window';
import { codeOf } from './outboxFixtures';
import { react, sendText } from './sendService';
import { createOutboxWorker, type OutboxWorker } from './worker';

const TOKEN = 'EAAreaction-test-token-0';
const APP_SECRET = 'reaction-app-secret';
const PHONE = '110000000000001';
const PATIENT = '15555550101';
const HOUR = 3600_000;
const logger = pino({ level: 'silent' });


/**
 * The receptionist's reaction, end to end without the relay: the patient's message arrives through
 * the simulator's signed webhook and ingest, the reaction goes out through the outbox to the
 * simulator (which checks Meta's request shape and rules), and Meta's status webhooks come back.
 */
describe('reactions from the desk', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let sink: IngestSink;
  let worker: OutboxWorker;
  let clock: number;

  beforeEach(async () => {
    t = createTestDb();
    clock = Date.now();
    sink = await startIngestSink({ db: t.db, appSecret: APP_SECRET });
    sim = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: PHONE,
      wabaId: '100000000000001',
      appSecret: APP_SECRET,
      webhookUrl: sink.webhookUrl,
      autoStatuses: { afterMs: 20, statuses: ['sent', 'delivered', 'read'] },
      now: () => clock,
    });
    await sim.listen();
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    worker = createOutboxWorker({ db: t.db, client, getAccessToken: async () => TOKEN, logger, now: () => clock, policy: { baseMs: 1, maxMs: 1 } });
  });

  afterEach(async () => {
    await worker.stop();
    await sim.close();
    await sink.close();
    t.cleanup();
  });

  async function patientWrites(text: string, at = clock - 60_000): Promise<{ conversationId: number; messageId: number; wamid: string }> {
    const { wamid } = await sim.postInbound({ from: PATIENT, name: 'Maria', text, at });
    const row = t.db.prepare('SELECT id, conversation_id FROM messages WHERE wamid = ?').get(wamid) as { id: number; conversation_id: number };
    return { conversationId: row.conversation_id, messageId: row.id, wamid };
  }

  function bubble(conversationId: number, messageId: number) {
    return listThread(t.db, { conversationId }).items.find((m) => m.id === messageId)!;
  }

  const reactionSends = () => sim.sends.filter((s) => s.type === 'reaction');

  it('reacts, changes and removes: one reaction per message, each sent in Meta shape, shown with its state', async () => {
    const m = await patientWrites('Danke für den Termin!');
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '👍', authorUserId: 'u_anna', now: clock })).toEqual({ queued: true });
    // Shown at once, pending, before the network is involved.
    expect(bubble(m.conversationId, m.messageId).reactions).toEqual([{ emoji: '👍', fromBusiness: true, status: 'pending', errorTitle: null }]);

    await worker.runOnce();
    expect(reactionSends()).toHaveLength(1);
    expect(reactionSends()[0]!.request).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: PATIENT,
      type: 'reaction',
      reaction: { message_id: m.wamid, emoji: '👍' },
      biz_opaque_callback_data: expect.stringMatching(/^ci-outbox:/),
    });
    expect(bubble(m.conversationId, m.messageId).reactions).toEqual([{ emoji: '👍', fromBusiness: true, status: 'sent', errorTitle: null }]);
    // Meta's `sent` webhook for the reaction is matched to it, not left waiting for a message.
    await expect.poll(() => t.db.prepare('SELECT count(*) AS n FROM message_statuses WHERE wamid = ? AND applied_at IS NOT NULL').get(reactionSends()[0]!.wamid)).toEqual({ n: 1 });
    expect(bubble(m.conversationId, m.messageId).status).toBe('received');

    // A change replaces it.
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '❤️', now: clock })).toEqual({ queued: true });
    await worker.runOnce();
    expect(reactionSends().map((s) => (s.request as { reaction: { emoji: string } }).reaction.emoji)).toEqual(['👍', '❤️']);
    expect(bubble(m.conversationId, m.messageId).reactions).toEqual([{ emoji: '❤️', fromBusiness: true, status: 'sent', errorTitle: null }]);
    expect(t.db.prepare('SELECT count(*) AS n FROM reactions WHERE from_business = 1').get()).toEqual({ n: 1 });

    // The same emoji again changes nothing and sends nothing.
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '❤️', now: clock })).toEqual({ queued: false });

    // An empty emoji removes it: sent as Meta's removal, then gone from the bubble.
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '', now: clock })).toEqual({ queued: true });
    expect(bubble(m.conversationId, m.messageId).reactions).toEqual([{ emoji: '', fromBusiness: true, status: 'pending', errorTitle: null }]);
    await worker.runOnce();
    expect((reactionSends()[2]!.request as { reaction: unknown }).reaction).toEqual({ message_id: m.wamid, emoji: '' });
    expect(bubble(m.conversationId, m.messageId).reactions).toEqual([]);
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '', now: clock })).toEqual({ queued: false });
  });

  it('a change made while the reaction waits goes out once, as the latest choice', async () => {
    const m = await patientWrites('Bis morgen');
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '👍', now: clock });
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '🙏', now: clock });
    expect(t.db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'reaction'`).get()).toEqual({ n: 1 });
    await worker.runOnce();
    expect(reactionSends().map((s) => (s.request as { reaction: { emoji: string } }).reaction.emoji)).toEqual(['🙏']);
  });

  it("refuses what Meta's rules refuse, with a clear code, and stores nothing", async () => {
    const old = await patientWrites('Vor langer Zeit', clock - REACTION_MAX_AGE_MS - HOUR);
    const m = await patientWrites('Heute'); // keeps the window open
    const mine = sendText(t.db, { conversationId: m.conversationId, text: 'Gern geschehen', now: clock });
    const base = { conversationId: m.conversationId, now: clock };

    expect(codeOf(() => react(t.db, { ...base, messageId: mine.messageId, emoji: '👍' }))).toBe('REACTION_NOT_ALLOWED');
    expect(codeOf(() => react(t.db, { ...base, messageId: old.messageId, emoji: '👍' }))).toBe('REACTION_NOT_ALLOWED');
    expect(codeOf(() => react(t.db, { ...base, messageId: m.messageId, emoji: 'ok' }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => react(t.db, { ...base, messageId: m.messageId, emoji: '👍👍' }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => react(t.db, { ...base, messageId: 999_999, emoji: '👍' }))).toBe('NOT_FOUND');
    t.db.prepare('UPDATE messages SET revoked_at = ? WHERE id = ?').run(clock, m.messageId);
    expect(codeOf(() => react(t.db, { ...base, messageId: m.messageId, emoji: '👍' }))).toBe('REACTION_NOT_ALLOWED');
    t.db.prepare('UPDATE messages SET revoked_at = NULL WHERE id = ?').run(m.messageId);
    // A reaction is a free-form message: once the window has closed, only a template goes.
    clock += 25 * HOUR;
    expect(codeOf(() => react(t.db, { ...base, now: clock, messageId: m.messageId, emoji: '👍' }))).toBe('WINDOW_CLOSED');

    expect(t.db.prepare('SELECT count(*) AS n FROM reactions').get()).toEqual({ n: 0 });
    expect(t.db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'reaction'`).get()).toEqual({ n: 0 });
  });

  it('a reaction Meta will not deliver (131009 webhook) and one that failed to send show why on the bubble; a retryable answer is retried', async () => {
    const m = await patientWrites('Hallo');
    // A message Meta has no record of this patient sending (the simulator has not seen it).
    const stranger = Number(
      t.db
        .prepare(
          `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
           VALUES (?, 'wamid.NOT-AT-META', 'inbound', 'text', 'x', '{}', ?, ?, 'received')`,
        )
        .run(m.conversationId, clock - 1000, clock - 1000).lastInsertRowid,
    );
    react(t.db, { conversationId: m.conversationId, messageId: stranger, emoji: '👍', now: clock });
    await worker.runOnce();
    await expect
      .poll(() => bubble(m.conversationId, stranger).reactions)
      .toEqual([{ emoji: '👍', fromBusiness: true, status: 'failed', errorTitle: 'Parameter value is not valid' }]);

    // A 503 is retried; a refusal (Meta's 100) fails with Meta's title.
    sim.inject('messages', { type: 'http', status: 503 });
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '😊', now: clock });
    await worker.runOnce();
    expect(bubble(m.conversationId, m.messageId).reactions[0]!.status).toBe('pending');
    clock += 10;
    await worker.runOnce();
    expect(bubble(m.conversationId, m.messageId).reactions[0]!.status).toBe('sent');

    sim.inject('messages', { type: 'graph', code: 100, message: '(#100) Invalid parameter' });
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '🙏', now: clock });
    await worker.runOnce();
    const failed = bubble(m.conversationId, m.messageId).reactions[0]!;
    expect(failed).toMatchObject({ emoji: '🙏', status: 'failed' });
    expect(failed.errorTitle).toBeTruthy();
    // Trying the same emoji again after a failure sends it again.
    expect(react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '🙏', now: clock })).toEqual({ queued: true });
  });

  it("erasing the patient removes the clinic's reactions, their queued sends and Meta's statuses about them", async () => {
    const m = await patientWrites('Bitte löschen Sie meine Daten');
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '👍', now: clock });
    await worker.runOnce();
    await expect.poll(() => t.db.prepare('SELECT count(*) AS n FROM message_statuses WHERE wamid = ?').get(reactionSends()[0]!.wamid)).toEqual({ n: 1 });
    react(t.db, { conversationId: m.conversationId, messageId: m.messageId, emoji: '❤️', now: clock });
    const contactId = (t.db.prepare('SELECT contact_id FROM conversations WHERE id = ?').get(m.conversationId) as { contact_id: number }).contact_id;

    t.db.transaction(() => eraseContact(t.db, { contactId, erasedBy: 'u_admin', now: clock, databaseKey: t.key }))();
    for (const table of ['reactions', 'message_statuses', 'outbox', 'messages']) {
      expect(t.db.prepare(`SELECT count(*) AS n FROM ${table}`).get(), table).toEqual({ n: 0 });
    }
  });
});

describe('messages.react through the RPC', () => {
  let s: SeededCore;
  beforeAll(async () => {
    // The seeded patients wrote at 1,760,000,000 s: a minute later their windows are open.
    s = await startSeededCore({ start: 1_760_000_060_000 });
  });
  afterAll(async () => s.stop());

  it('a receptionist may react (audited as a send to that patient); an admin or an auditor may not', async () => {
    const [p1] = s.patients;
    const target = s.read((db) => db.prepare(`SELECT id FROM messages WHERE conversation_id = ? AND direction = 'inbound'`).get(p1.conversationId) as { id: number });
    const input = { conversationId: p1.conversationId, messageId: target.id, emoji: '👍' };
    for (const roles of [['admin'], ['auditor']] as const) {
      const person = { username: `react-${roles[0]}`, displayName: `React ${roles[0]}`, roles: [...roles] };
      const connection = await signIn(s.core, person);
      expect(await connection.dispatch('messages.react', input)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    expect(s.read((db) => db.prepare('SELECT count(*) AS n FROM reactions').get())).toEqual({ n: 0 });

    const desk = await signIn(s.core, { username: 'react-desk', displayName: 'React Desk', roles: ['receptionist'] });
    expect(await rpc(desk, 'messages.react', input)).toEqual({ queued: true });
    const thread = await rpc(desk, 'messages.list', { conversationId: p1.conversationId });
    expect(thread.items.find((m) => m.id === target.id)!.reactions).toEqual([{ emoji: '👍', direction: 'out', status: 'pending', error: null }]);
    const audit = s.read((db) =>
      db.prepare(`SELECT action, outcome, contact_ids FROM audit_log WHERE method = 'messages.react' ORDER BY seq`).all() as { action: string; outcome: string; contact_ids: string }[],
    );
    expect(audit.map((a) => a.outcome)).toEqual(['denied', 'denied', 'ok']);
    expect(audit.at(-1)).toEqual({ action: 'send', outcome: 'ok', contact_ids: JSON.stringify([p1.contactId]) });
    // A file that is not base64 is refused (the core checks while decoding) and stores nothing.
    const before = s.read((db) => db.prepare('SELECT count(*) AS n FROM messages').get());
    expect(await desk.dispatch('messages.sendMedia', { conversationId: p1.conversationId, dataBase64: 'aGVsbG8*!gd29ybGQ=', mimeType: 'text/plain', filename: 'a.txt' })).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_FAILED' },
    });
    expect(s.read((db) => db.prepare('SELECT count(*) AS n FROM messages').get())).toEqual(before);
    // A bad emoji is refused at the edge and changes nothing.
    expect(await desk.dispatch('messages.react', { ...input, emoji: 'x'.repeat(17) })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
  });
});
