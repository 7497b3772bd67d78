import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discoverInboundMedia, getMediaContent, getMediaInfo } from '../db/repo/media';
import { createGraphClient } from '../graph/client';
import { seedConversation } from '../outbox/outboxFixtures';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { createTestDb, type TestDb } from '../testing/testDb';
import { createMediaDownloader, type MediaChange, type MediaDownloader } from './downloader';

const TOKEN = 'EAAmedia-test-token-0000';
const PHONE = '110000000000001';
const logger = pino({ level: 'silent' });

describe('inbound media downloads', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let downloader: MediaDownloader;
  let clock: number;
  let changes: MediaChange[];
  let conversationId: number;

  beforeEach(async () => {
    t = createTestDb();
    clock = Date.UTC(2026, 10, 22, 10, 0, 0);
    changes = [];
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: '100000000000001', now: () => clock });
    await sim.listen();
    ({ conversationId } = seedConversation(t.db, { waId: '15555550101', phoneNumberId: PHONE, lastInboundAt: clock }));
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
    downloader = createMediaDownloader({ db: t.db, client, logger, now: () => clock, random: () => 0.5, policy: { baseMs: 1000, maxAttempts: 3 }, onChanged: (c) => changes.push(c) });
  });

  afterEach(async () => {
    await downloader.stop();
    await sim.close();
    t.cleanup();
  });

  /** What ingest stores for an inbound media message: the webhook's message object as content. */
  function inbound(type: 'image' | 'document' | 'sticker', mediaId: string, mimeType: string, sha256Base64: string): number {
    const content = { from: '15555550101', id: `wamid.${mediaId}`, timestamp: '1760000060', type, [type]: { mime_type: mimeType, sha256: sha256Base64, id: mediaId } };
    return Number(
      t.db
        .prepare(
          `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, media_id, sent_at, received_at, status)
           VALUES (?, ?, 'inbound', ?, NULL, ?, ?, ?, ?, 'received')`,
        )
        .run(conversationId, `wamid.${mediaId}`, type, JSON.stringify(content), mediaId, clock, clock).lastInsertRowid,
    );
  }

  const b64 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('base64');
  const rowFor = (messageId: number) => (t.db.prepare('SELECT id FROM media WHERE message_id = ?').get(messageId) as { id: number }).id;

  it('downloads inbound media, checks the hash and stores it encrypted in the database', async () => {
    const marker = Buffer.from('CLINIC-INBOX-PLAINTEXT-MARKER-'.repeat(50));
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), marker]);
    const mediaId = sim.addMedia({ bytes: jpeg, mimeType: 'image/jpeg' });
    const messageId = inbound('image', mediaId, 'image/jpeg', b64(jpeg));

    expect(await downloader.runOnce()).toBe(1);
    const id = rowFor(messageId);
    expect(getMediaInfo(t.db, id)).toMatchObject({ state: 'stored', size: jpeg.length, mimeType: 'image/jpeg', mediaId });
    expect(getMediaContent(t.db, id)!.content.equals(jpeg)).toBe(true);
    expect(changes).toEqual([{ mediaRowId: id, messageId, conversationId, state: 'stored' }]);
    expect(await downloader.runOnce()).toBe(0);
    expect(sim.hits['media.download']).toBe(1);

    t.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(readFileSync(t.path).includes(Buffer.from('CLINIC-INBOX-PLAINTEXT-MARKER'))).toBe(false);
  });

  it('after a delivery, queues the media of the messages it brought only; a full pass finds the rest', () => {
    const earlier = inbound('image', '3200000000000001', 'image/jpeg', 'aGFzaA==');
    const delivered = inbound('document', '3200000000000002', 'application/pdf', 'aGFzaA==');
    const media = () => t.db.prepare('SELECT message_id, mime_type, state FROM media ORDER BY message_id').all();
    expect(discoverInboundMedia(t.db, clock, [])).toBe(0);
    expect(discoverInboundMedia(t.db, clock, [delivered])).toBe(1);
    expect(media()).toEqual([{ message_id: delivered, mime_type: 'application/pdf', state: 'pending' }]);
    // Once queued, a message is not queued again.
    expect(discoverInboundMedia(t.db, clock, [delivered])).toBe(0);
    expect(discoverInboundMedia(t.db, clock)).toBe(1);
    expect(media()).toEqual([
      { message_id: earlier, mime_type: 'image/jpeg', state: 'pending' },
      { message_id: delivered, mime_type: 'application/pdf', state: 'pending' },
    ]);
  });

  it('refuses bytes whose sha256 does not match what Meta announced, and never stores them', async () => {
    const bytes = Buffer.from('%PDF-1.4 real document');
    const mediaId = sim.addMedia({ bytes, mimeType: 'application/pdf' });
    const messageId = inbound('document', mediaId, 'application/pdf', b64(Buffer.from('something else')));
    await downloader.runOnce();
    const id = rowFor(messageId);
    expect(getMediaInfo(t.db, id)).toMatchObject({ state: 'pending', lastError: 'sha256 mismatch' });
    expect(getMediaContent(t.db, id)).toBeNull();
    clock += 60_000;
    await downloader.runOnce();
    clock += 60_000;
    await downloader.runOnce();
    expect(getMediaInfo(t.db, id)).toMatchObject({ state: 'failed', lastError: 'sha256 mismatch' });
    expect(getMediaContent(t.db, id)).toBeNull();
    expect(changes.at(-1)).toMatchObject({ mediaRowId: id, state: 'failed' });

    // The media endpoint's hash is checked too.
    const lying = sim.addMedia({ bytes, mimeType: 'application/pdf', sha256Hex: '00'.repeat(32) });
    const second = inbound('document', lying, 'application/pdf', b64(bytes));
    await downloader.runOnce();
    expect(getMediaInfo(t.db, rowFor(second))!.state).toBe('pending');
  });

  it('refuses media over Meta’s limit for its type without downloading it', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 1);
    const mediaId = sim.addMedia({ bytes: big, mimeType: 'image/png' });
    const messageId = inbound('image', mediaId, 'image/png', b64(big));
    await downloader.runOnce();
    expect(getMediaInfo(t.db, rowFor(messageId))).toMatchObject({ state: 'too_large', size: big.length });
    expect(sim.hits['media.download']).toBe(0);

    const sticker = Buffer.alloc(600 * 1024, 2);
    const sid = sim.addMedia({ bytes: sticker, mimeType: 'image/webp' });
    const sm = inbound('sticker', sid, 'image/webp', b64(sticker));
    await downloader.runOnce();
    expect(getMediaInfo(t.db, rowFor(sm))!.state).toBe('too_large');
  });

  it('retries with backoff when Meta is unavailable or the URL expired, with a fresh URL each time', async () => {
    const bytes = Buffer.from('fake-jpeg-bytes');
    const mediaId = sim.addMedia({ bytes, mimeType: 'image/jpeg' });
    const messageId = inbound('image', mediaId, 'image/jpeg', b64(bytes));
    sim.inject('media.info', { type: 'http', status: 503 });
    sim.inject('media.download', { type: 'http', status: 404 });
    await downloader.runOnce();
    const id = rowFor(messageId);
    expect(getMediaInfo(t.db, id)!.state).toBe('pending');
    await downloader.runOnce();
    expect(sim.hits['media.info']).toBe(1); // backing off
    clock += 1000;
    await downloader.runOnce();
    expect(getMediaInfo(t.db, id)!.state).toBe('pending'); // the URL failed this time
    clock += 2000;
    await downloader.runOnce();
    expect(getMediaInfo(t.db, id)!.state).toBe('stored');
    expect(sim.hits['media.info']).toBe(3);
  });

  it('an outage does not use up the attempts: media still arrive when Meta is back', async () => {
    const bytes = Buffer.from('voice-note-bytes');
    const mediaId = sim.addMedia({ bytes, mimeType: 'audio/ogg' });
    const content = { from: '15555550101', id: 'wamid.voice', timestamp: '1760000060', type: 'audio', audio: { mime_type: 'audio/ogg; codecs=opus', sha256: b64(bytes), id: mediaId, voice: true } };
    const messageId = Number(
      t.db
        .prepare(
          `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, media_id, sent_at, received_at, status)
           VALUES (?, 'wamid.voice', 'inbound', 'audio', NULL, ?, ?, ?, ?, 'received')`,
        )
        .run(conversationId, JSON.stringify(content), mediaId, clock, clock).lastInsertRowid,
    );
    sim.inject('media.info', { type: 'drop' }, 6);
    for (let i = 0; i < 6; i++) {
      await downloader.runOnce();
      expect(getMediaInfo(t.db, rowFor(messageId))!.state).toBe('pending');
      clock += 10 * 60_000;
    }
    await downloader.runOnce();
    expect(getMediaInfo(t.db, rowFor(messageId))).toMatchObject({ state: 'stored', size: bytes.length });
  });
});
