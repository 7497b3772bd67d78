import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replaceTemplates } from '../db/repo/templates';
import { createGraphClient } from '../graph/client';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../testing/graphSimulator';
import { startIngestSink, type IngestSink } from '../testing/ingestSink';
import { createTestDb, type TestDb } from '../testing/testDb';
import { sendTemplate, sendText } from './sendService';
import { createOutboxWorker, type OutboxWorker } from './worker';

const TOKEN = 'EAAbsuid-roundtrip-token';
const APP_SECRET = 'bsuid-roundtrip-secret';
const PHONE = '110000000000001';
const BSUID = 'NL.8812345678901234';
const NEXT_BSUID = 'NL.9923456789012345';
const logger = pino({ level: 'silent' });
const TEMPLATES: SimTemplate[] = [
  { name: 'login_code', language: 'nl', status: 'APPROVED', category: 'AUTHENTICATION', components: [{ type: 'BODY', text: 'Uw code is {{1}}.' }] },
];

/**
 * A patient who uses a WhatsApp username and shares no phone number, end to end without the relay:
 * signed webhooks from the simulator are verified and stored by ingest, replies leave through the
 * outbox, and Meta's status webhooks (which name such a patient only by `recipient_user_id`) come back.
 */
describe('round trip with a patient known only by a business-scoped user id', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let sink: IngestSink;
  let worker: OutboxWorker;

  beforeEach(async () => {
    t = createTestDb();
    sink = await startIngestSink({ db: t.db, appSecret: APP_SECRET });
    sim = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: PHONE,
      wabaId: '100000000000001',
      appSecret: APP_SECRET,
      webhookUrl: sink.webhookUrl,
      autoStatuses: { afterMs: 20, statuses: ['sent', 'delivered', 'read'] },
      templates: TEMPLATES,
    });
    await sim.listen();
    replaceTemplates(t.db, TEMPLATES.map((x, i) => ({ ...x, id: String(i + 1) })), Date.now());
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    worker = createOutboxWorker({ db: t.db, client, getAccessToken: async () => TOKEN, logger });
  });

  afterEach(async () => {
    await worker.stop();
    await sim.close();
    await sink.close();
    t.cleanup();
  });

  const onlyConversation = () => t.db.prepare('SELECT id FROM conversations').pluck().get() as number;
  const statusOf = (messageId: number) => t.db.prepare('SELECT status FROM messages WHERE id = ?').pluck().get(messageId) as string;

  it('the patient writes, the reply goes by recipient, and recipient_user_id statuses move the ticks to read', async () => {
    await sim.postInbound({ userId: BSUID, username: 'sanne.v', name: 'Sanne', text: 'Mag ik mijn afspraak verzetten?' });
    const conversationId = onlyConversation();
    expect(t.db.prepare('SELECT wa_id, user_id, username FROM contacts').get()).toEqual({ wa_id: null, user_id: BSUID, username: 'sanne.v' });

    const { messageId } = sendText(t.db, { conversationId, text: 'Natuurlijk, donderdag 10 uur?', now: Date.now() });
    await worker.runOnce();
    expect(sim.sends).toHaveLength(1);
    expect(sim.sends[0]!.request).toMatchObject({ recipient: BSUID, text: { body: 'Natuurlijk, donderdag 10 uur?' } });
    expect(sim.sends[0]!.request).not.toHaveProperty('to');

    await expect.poll(() => statusOf(messageId)).toBe('read');
    const hooks = sim.webhooks.map((w) => JSON.parse(w.body).entry[0].changes[0].value.statuses?.[0]).filter(Boolean);
    expect(hooks.map((s: { status: string }) => s.status)).toEqual(['sent', 'delivered', 'read']);
    for (const s of hooks) {
      expect(s).toMatchObject({ recipient_user_id: BSUID });
      expect(s).not.toHaveProperty('recipient_id');
    }
    const history = t.db.prepare('SELECT status FROM message_statuses WHERE wamid = ? ORDER BY status_at, status').pluck().all(sim.sends[0]!.wamid);
    expect(history).toHaveLength(3);
  });

  it('an authentication template to such a patient fails visibly with 131062 and is not sent again', async () => {
    await sim.postInbound({ userId: BSUID, name: 'Sanne', text: 'Ik kan niet inloggen.' });
    const conversationId = onlyConversation();
    const { messageId } = sendTemplate(t.db, { conversationId, name: 'login_code', language: 'nl', parameters: ['551203'], now: Date.now() });
    await worker.runOnce();
    await worker.runOnce();
    expect(sim.hits.messages).toBe(1);
    expect(t.db.prepare('SELECT status, error_code, error_title FROM messages WHERE id = ?').get(messageId)).toEqual({
      status: 'failed',
      error_code: 131062,
      error_title: 'Business-scoped User ID recipients are not supported for this message',
    });
    expect(t.db.prepare(`SELECT state FROM outbox WHERE message_id = ?`).pluck().get(messageId)).toBe('failed');

    // Meta may also accept the send and report 131062 in a `failed` status webhook afterwards.
    sim.inject('messages', { type: 'failedStatus', code: 131062, title: 'Business-scoped User ID recipients are not supported for this message' });
    const accepted = sendText(t.db, { conversationId, text: 'Probeer het opnieuw.', now: Date.now() });
    await worker.runOnce();
    await expect
      .poll(() => t.db.prepare('SELECT status, error_code, error_title FROM messages WHERE id = ?').get(accepted.messageId))
      .toEqual({ status: 'failed', error_code: 131062, error_title: 'Business-scoped User ID recipients are not supported for this message' });
    expect(sim.hits.messages).toBe(2);
  });

  it('after Meta announces a new BSUID the thread continues and replies go to the new id', async () => {
    await sim.postInbound({ userId: BSUID, name: 'Sanne', text: 'Hallo' });
    await sim.postSystem({ userId: BSUID, system: { type: 'user_changed_user_id', user_id: NEXT_BSUID, previous_user_id: BSUID } });
    await sim.postInbound({ userId: NEXT_BSUID, name: 'Sanne', text: 'Ik ben het nog steeds' });
    expect(t.db.prepare('SELECT count(*) FROM conversations').pluck().get()).toBe(1);
    const conversationId = onlyConversation();
    expect(t.db.prepare('SELECT type FROM messages WHERE conversation_id = ? ORDER BY id').pluck().all(conversationId)).toEqual(['text', 'system', 'text']);

    const { messageId } = sendText(t.db, { conversationId, text: 'Welkom terug', now: Date.now() });
    await worker.runOnce();
    expect(sim.sends.at(-1)!.request).toMatchObject({ recipient: NEXT_BSUID });
    await expect.poll(() => statusOf(messageId)).toBe('read');
  });
});
