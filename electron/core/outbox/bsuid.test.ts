import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replaceTemplates } from '../db/repo/templates';
import type { Database } from '../db/types';
import { createGraphClient } from '../graph/client';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../testing/graphSimulator';
import { createTestDb, type TestDb } from '../testing/testDb';
import { seedConversation } from './outboxFixtures';
import { markRead, sendMedia, sendTemplate, sendText } from './sendService';
import { createOutboxWorker, type OutboxWorker } from './worker';

const TOKEN = 'EAAbsuid-test-token-0000';
const PHONE = '110000000000001';
const WABA = '100000000000001';
const BSUID = 'DE.1502576394655843';
const NUMBER = '4915110000042';
const HOUR = 3600_000;
const logger = pino({ level: 'silent' });

const TEMPLATES: SimTemplate[] = [
  { name: 'appointment_reminder', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihr Termin ist am {{1}}.' }] },
  { name: 'login_code', language: 'de', status: 'APPROVED', category: 'AUTHENTICATION', components: [{ type: 'BODY', text: 'Ihr Code lautet {{1}}.' }] },
];

function message(db: Database, id: number) {
  return db.prepare('SELECT wamid, status, error_code, error_title FROM messages WHERE id = ?').get(id) as {
    wamid: string | null;
    status: string;
    error_code: number | null;
    error_title: string | null;
  };
}

/**
 * Patients who adopted a WhatsApp username may reach the clinic with a business-scoped user id and
 * no phone number. Replies must go out addressed by `recipient`; patients with a number keep `to`.
 */
describe('replying to a patient known only by a business-scoped user id', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let worker: OutboxWorker;
  let clock: number;
  let bsuidConversation: number;
  let phoneConversation: number;

  beforeEach(async () => {
    t = createTestDb();
    clock = Date.UTC(2026, 10, 22, 10, 0, 0);
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: WABA, templates: TEMPLATES, now: () => clock });
    await sim.listen();
    sim.noteInbound(BSUID, clock - HOUR);
    sim.noteInbound(NUMBER, clock - HOUR);
    bsuidConversation = seedConversation(t.db, { waId: null, userId: BSUID, phoneNumberId: PHONE, lastInboundAt: clock - HOUR, inboundWamid: 'wamid.BSUID1' }).conversationId;
    phoneConversation = seedConversation(t.db, { waId: NUMBER, userId: 'DE.7000000000000007', phoneNumberId: PHONE, lastInboundAt: clock - HOUR, inboundWamid: 'wamid.PHONE1' })
      .conversationId;
    replaceTemplates(t.db, TEMPLATES.map((x, i) => ({ ...x, id: String(i + 1) })), clock);
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger, timeoutMs: 2000 });
    worker = createOutboxWorker({ db: t.db, client, getAccessToken: async () => TOKEN, logger, now: () => clock, random: () => 0.5, policy: { baseMs: 1000 } });
  });

  afterEach(async () => {
    await worker.stop();
    await sim.close();
    t.cleanup();
  });

  it('addresses text, template and media by `recipient`, with no `to`', async () => {
    const text = sendText(t.db, { conversationId: bsuidConversation, text: 'Ihr Rezept liegt bereit.', replyToMessageId: 1, now: clock });
    const template = sendTemplate(t.db, { conversationId: bsuidConversation, name: 'appointment_reminder', language: 'de', parameters: ['Donnerstag'], now: clock });
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(2000, 7)]);
    const media = sendMedia(t.db, { conversationId: bsuidConversation, bytes: jpeg, mimeType: 'image/jpeg', caption: 'Anfahrt', now: clock });
    await worker.runOnce();

    expect(sim.sends.map((s) => s.type)).toEqual(['text', 'template', 'image']);
    for (const s of sim.sends) {
      expect(s.request.recipient).toBe(BSUID);
      expect(s.request).not.toHaveProperty('to');
      expect(s).toMatchObject({ to: null, recipient: BSUID, userId: BSUID, waId: null });
    }
    expect(sim.sends[0]!.request).toMatchObject({ recipient_type: 'individual', text: { body: 'Ihr Rezept liegt bereit.' }, context: { message_id: 'wamid.BSUID1' } });
    expect(sim.sends[1]!.request).toMatchObject({ template: { name: 'appointment_reminder', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Donnerstag' }] }] } });
    expect(sim.sends[2]!.request).toMatchObject({ image: { caption: 'Anfahrt' } });
    // The answer's contacts[] carries user_id, not wa_id: the client takes the wamid all the same.
    for (const e of [text, template, media]) expect(message(t.db, e.messageId).status).toBe('sent');
  });

  it('keeps `to` for a patient whose number we have, even when a BSUID is known too', async () => {
    sendText(t.db, { conversationId: phoneConversation, text: 'Bis morgen.', now: clock });
    await worker.runOnce();
    expect(sim.sends).toHaveLength(1);
    expect(sim.sends[0]!.request).toMatchObject({ to: NUMBER });
    expect(sim.sends[0]!.request).not.toHaveProperty('recipient');
  });

  it('marks a BSUID patient’s message read without any addressee', async () => {
    expect(markRead(t.db, { conversationId: bsuidConversation, now: clock })).toEqual({ queued: true });
    await worker.runOnce();
    expect(sim.reads).toEqual(['wamid.BSUID1']);
  });

  it('131062 (authentication template to a BSUID) fails the message with Meta’s reason and is not retried', async () => {
    const { messageId } = sendTemplate(t.db, { conversationId: bsuidConversation, name: 'login_code', language: 'de', parameters: ['482913'], now: clock });
    await worker.runOnce();
    expect(sim.hits.messages).toBe(1);
    expect(sim.sends).toHaveLength(0);
    expect(message(t.db, messageId)).toMatchObject({
      status: 'failed',
      wamid: null,
      error_code: 131062,
      error_title: 'Business-scoped User ID recipients are not supported for this message',
    });
    clock += 2 * HOUR;
    await worker.runOnce();
    expect(sim.hits.messages).toBe(1);

    // The same template to a patient with a number goes out.
    const ok = sendTemplate(t.db, { conversationId: phoneConversation, name: 'login_code', language: 'de', parameters: ['482913'], now: clock });
    await worker.runOnce();
    expect(message(t.db, ok.messageId).status).toBe('sent');
  });

  it('a 131062 refusal of any other message fails it too, never retried', async () => {
    sim.inject('messages', { type: 'graph', code: 131062, message: '(#131062) Business-scoped User ID recipients are not supported for this message' });
    const { messageId } = sendText(t.db, { conversationId: bsuidConversation, text: 'Hallo', now: clock });
    await worker.runOnce();
    clock += HOUR;
    await worker.runOnce();
    expect(sim.hits.messages).toBe(1);
    expect(message(t.db, messageId)).toMatchObject({ status: 'failed', error_code: 131062 });
  });
});
