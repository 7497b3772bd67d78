import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getMediaContent } from '../db/repo/media';
import { createGraphClient } from '../graph/client';
import { createMediaDownloader } from '../media/downloader';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { startIngestSink, type IngestSink } from '../testing/ingestSink';
import { createTestDb, type TestDb } from '../testing/testDb';
import { sendText } from './sendService';
import { createOutboxWorker, type OutboxWorker } from './worker';

const TOKEN = 'EAAroundtrip-token-00000';
const APP_SECRET = 'roundtrip-app-secret';
const PHONE = '110000000000001';
const PATIENT = '15555550101';
const logger = pino({ level: 'silent' });

/**
 * The appliance side of Meta's webhooks without the relay: checks the signature over the raw
 * bytes, then stores the webhook with ingest's own `applyWebhook`, as the core does after opening
 * an envelope. Proves the simulator's webhooks, ingest and the outbox agree with each other.
 */
describe('round trip: patient → ingest → reply through the outbox → statuses back', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let sink: IngestSink;
  let worker: OutboxWorker;
  let afterIngest: () => void = () => undefined;

  beforeEach(async () => {
    t = createTestDb();
    sink = await startIngestSink({ db: t.db, appSecret: APP_SECRET, afterIngest: () => afterIngest() });
    sim = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: PHONE,
      wabaId: '100000000000001',
      appSecret: APP_SECRET,
      webhookUrl: sink.webhookUrl,
      autoStatuses: { afterMs: 20, statuses: ['sent', 'delivered', 'read'] },
    });
    await sim.listen();
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    worker = createOutboxWorker({ db: t.db, client, getAccessToken: async () => TOKEN, logger });
  });

  afterEach(async () => {
    await worker.stop();
    await sim.close();
    await sink.close();
    t.cleanup();
  });

  function onlyConversation(): number {
    return (t.db.prepare('SELECT id FROM conversations').get() as { id: number }).id;
  }

  it('a reply reaches read, and a 131047 webhook marks it failed with the reason', async () => {
    await sim.postInbound({ from: PATIENT, name: 'Maria', text: 'Kann ich den Termin verschieben?', at: Date.now() - 60_000 });
    const conversationId = onlyConversation();

    const { messageId } = sendText(t.db, { conversationId, text: 'Ja, gerne. Donnerstag 10 Uhr?', now: Date.now() });
    await worker.runOnce();
    await expect.poll(() => (t.db.prepare('SELECT status FROM messages WHERE id = ?').get(messageId) as { status: string }).status).toBe('read');

    sim.inject('messages', { type: 'reengagement' });
    const second = sendText(t.db, { conversationId, text: 'Noch eine Frage?', now: Date.now() });
    await worker.runOnce();
    await expect
      .poll(() => t.db.prepare('SELECT status, error_code, error_title FROM messages WHERE id = ?').get(second.messageId))
      .toEqual({ status: 'failed', error_code: 131047, error_title: 'Re-engagement message' });
  });

  it('an image the patient sends is downloaded right after ingest', async () => {
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    const downloader = createMediaDownloader({ db: t.db, client, logger });
    downloader.start();
    afterIngest = () => downloader.kick();
    try {
      const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(4000, 9)]);
      const mediaId = sim.addMedia({ bytes: jpeg, mimeType: 'image/jpeg' });
      await sim.postInbound({ from: PATIENT, name: 'Maria', media: { kind: 'image', mediaId, caption: 'Rezept' } });
      await expect.poll(() => (t.db.prepare('SELECT state FROM media WHERE media_id = ?').get(mediaId) as { state: string } | undefined)?.state).toBe('stored');
      const row = t.db.prepare('SELECT id FROM media WHERE media_id = ?').get(mediaId) as { id: number };
      expect(getMediaContent(t.db, row.id)!.content.equals(jpeg)).toBe(true);
    } finally {
      await downloader.stop();
    }
  });
});
