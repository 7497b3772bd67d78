import { createHash, randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import type { StatusChange } from '../db/repo/outbox';
import { createGraphClient } from '../graph/client';
import { seedConversation } from '../outbox/outboxFixtures';
import { queueMediaSend } from '../outbox/sendService';
import { readMediaBytes } from '../db/repo/media';
import { createOutboxWorker, type OutboxWorker } from '../outbox/worker';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { createTestDb, type TestDb } from '../testing/testDb';
import { decodeFileBase64 } from './base64';
import { createOutboundFiles, type HandedFile, type OutboundFiles } from './outboundFiles';

const TOKEN = 'EAAfiles-test-token-0000';
const PHONE = '110000000000001';
const PATIENT = '15555550101';
/** Warnings and errors of the code under test (a write that fell back from the thread says so). */
const warnings: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });

function jpeg(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes.set([0xff, 0xd8, 0xff, 0xe0], 0);
  return bytes;
}

describe('outgoing files stored beside the upload', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let files: OutboundFiles;
  let worker: OutboxWorker | null;
  let changes: StatusChange[];
  let conversationId: number;
  const clock = Date.UTC(2026, 10, 22, 10, 0, 0);

  beforeEach(async () => {
    t = createTestDb();
    changes = [];
    warnings.length = 0;
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: '100000000000001', now: () => clock });
    await sim.listen();
    sim.noteInbound(PATIENT, clock - 60_000);
    ({ conversationId } = seedConversation(t.db, { waId: PATIENT, phoneNumberId: PHONE, lastInboundAt: clock - 60_000 }));
    files = createOutboundFiles({ db: t.db, database: { path: t.path, key: t.key }, logger, now: () => clock });
    worker = null;
  });

  afterEach(async () => {
    await worker?.stop();
    await files.close();
    await sim.close();
    t.cleanup();
  });

  function startWorker(handoff: Pick<OutboundFiles, 'take'> | undefined): OutboxWorker {
    const getAccessToken = async () => TOKEN;
    worker = createOutboxWorker({
      db: t.db,
      client: createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken, logger, timeoutMs: 5000 }),
      getAccessToken,
      logger,
      now: () => clock,
      onStatusChanged: (c) => changes.push(c),
      ...(handoff ? { files: handoff } : {}),
    });
    return worker;
  }

  const row = (mediaRowId: number) => ({
    ...(t.db.prepare('SELECT state, size, sha256, file_name FROM media WHERE id = ?').get(mediaRowId) as { state: string; size: number; sha256: string | null; file_name: string | null }),
    content: readMediaBytes(t.db, mediaRowId),
  });
  const messageOf = (id: number) =>
    t.db.prepare('SELECT status, error_title, content_json FROM messages WHERE id = ?').get(id) as { status: string; error_title: string | null; content_json: string };

  it('commits the file in the writer thread while the outbox uploads it from memory, then sends it', async () => {
    const bytes = jpeg(2 * 1024 * 1024);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', filename: 'verwijzing.jpg', caption: 'Verwijzing', now: clock });
    // Queued, not yet stored: the row waits for its bytes and shows no hash.
    expect(row(queued.mediaRowId)).toMatchObject({ state: 'pending', size: bytes.length, sha256: null, content: null });
    const w = startWorker(files);
    const stored = files.store({ ...queued, bytes });
    const pass = w.runOnce();
    await stored;
    await pass;

    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const media = row(queued.mediaRowId);
    expect({ state: media.state, sha256: media.sha256, same: media.content?.equals(bytes) }).toEqual({ state: 'stored', sha256, same: true });
    // 2 MB: an encrypted file beside the database, not pages of it.
    expect(media.file_name).toMatch(/^[0-9a-f]{32}$/);
    expect(t.db.prepare('SELECT content FROM media WHERE id = ?').pluck().get(queued.mediaRowId)).toBeNull();
    expect(JSON.parse(messageOf(queued.messageId).content_json)).toMatchObject({ type: 'image', image: { mime_type: 'image/jpeg', sha256, caption: 'Verwijzing' } });
    expect(sim.uploads).toEqual([expect.objectContaining({ mimeType: 'image/jpeg', size: bytes.length, filename: 'verwijzing.jpg' })]);
    expect(sim.sends).toHaveLength(1);
    expect(sim.sends[0]!.request).toMatchObject({ type: 'image', image: { id: sim.uploads[0]!.id, caption: 'Verwijzing' } });
    expect(messageOf(queued.messageId).status).toBe('sent');
    expect(changes.map((c) => c.status)).toEqual(['sent']);
    // Written by the thread, not by the core's own connection as a fallback.
    expect(warnings).toEqual([]);
    // The in-memory copy is gone once stored: a retry reads the file back from the database.
    expect(files.take(queued.mediaRowId)).toBeUndefined();
  });

  it('hashes a file handed over before its message commits, keeps each hash with its own bytes, and forgets a refused one', async () => {
    // As the composer's files arrive: decoded into shared memory, handed over before the rows exist.
    const refusedBytes = decodeFileBase64(jpeg(70_000).toString('base64'));
    const keptBytes = decodeFileBase64(jpeg(90_000).toString('base64'));
    const refused = files.begin(refusedBytes);
    const kept = files.begin(keptBytes);
    refused.cancel();
    const queued = queueMediaSend(t.db, { conversationId, bytes: keptBytes, mimeType: 'image/jpeg', now: clock });
    await kept.store(queued);
    expect(row(queued.mediaRowId)).toMatchObject({ state: 'stored', sha256: createHash('sha256').update(keptBytes).digest('hex') });
    expect(row(queued.mediaRowId).content?.equals(keptBytes)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('starts the upload as soon as the message commits, and the outbox sends by that upload whether it took the file in time or not', async () => {
    const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger, timeoutMs: 5000 });
    const upload = (file: { phoneNumberId: string; mimeType: string }) => (bytes: Buffer) => client.uploadMedia({ ...file, bytes, filename: 'file' });

    // The outbox is busy elsewhere (no pass runs): the upload leaves all the same.
    const lateBytes = decodeFileBase64(jpeg(200_000).toString('base64'));
    const late = files.begin(lateBytes);
    const lateQueued = queueMediaSend(t.db, { conversationId, bytes: lateBytes, mimeType: 'image/jpeg', now: clock });
    await late.store(lateQueued, upload(lateQueued));
    await expect.poll(() => sim.uploads.length).toBe(1);
    // Meta's id is kept on the message, so the outbox's later attempt does not upload it again.
    await expect.poll(() => (t.db.prepare('SELECT media_id FROM messages WHERE id = ?').get(lateQueued.messageId) as { media_id: string | null }).media_id).toBe(sim.uploads[0]!.id);
    await startWorker(files).runOnce();
    expect(sim.uploads).toHaveLength(1);
    expect(sim.sends.map((s) => s.request)).toEqual([expect.objectContaining({ image: { id: sim.uploads[0]!.id } })]);

    // The outbox takes the file while it is being stored: it waits for the same upload.
    const bytes = decodeFileBase64(jpeg(150_000).toString('base64'));
    const begun = files.begin(bytes);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', now: clock });
    const stored = begun.store(queued, upload(queued));
    const pass = worker!.runOnce();
    await stored;
    await pass;
    expect(sim.uploads).toHaveLength(2);
    expect(sim.sends.at(-1)!.request).toMatchObject({ image: { id: sim.uploads[1]!.id } });
    expect(messageOf(queued.messageId).status).toBe('sent');
    expect(warnings).toEqual([]);
  });

  it('uploads while the file is being stored but sends nothing before it is; a file that cannot be stored is never sent', async () => {
    const bytes = jpeg(300_000);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', now: clock });
    let fail!: (err: Error) => void;
    const stored = new Promise<void>((_resolve, reject) => (fail = reject));
    stored.catch(() => undefined);
    let handed: HandedFile | undefined = { ...queued, bytes, stored };
    const pass = startWorker({ take: () => [handed, (handed = undefined)][0] }).runOnce();
    await expect.poll(() => sim.uploads.length).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.sends).toHaveLength(0);
    expect(messageOf(queued.messageId).status).toBe('pending');

    fail(new CodedError('INTERNAL', 'The file could not be stored on this computer, so it was not sent. Attach it again.'));
    await pass;
    expect(sim.sends).toHaveLength(0);
    expect(messageOf(queued.messageId)).toMatchObject({ status: 'failed', error_title: 'The file could not be stored on this computer, so it was not sent. Attach it again.' });
    expect(changes.map((c) => c.status)).toEqual(['failed']);
  });

  it('a send whose file never reached the disk (the app stopped between the two commits) fails with the reason, without an upload or a send', async () => {
    const queued = queueMediaSend(t.db, { conversationId, bytes: jpeg(50_000), mimeType: 'image/jpeg', now: clock });
    // After a restart nothing is in memory: the outbox finds the row without its bytes.
    await startWorker(files).runOnce();
    expect(sim.uploads).toHaveLength(0);
    expect(sim.sends).toHaveLength(0);
    expect(messageOf(queued.messageId)).toMatchObject({ status: 'failed', error_title: 'The attached file is not stored on this computer, so it was not sent. Attach it again.' });
  });

  it('stores the file on the core connection when the thread cannot, and says so in the log', async () => {
    await files.close();
    // A thread that cannot read the database (here: the wrong key) answers each write with an error.
    files = createOutboundFiles({ db: t.db, database: { path: t.path, key: randomBytes(32) }, logger, now: () => clock });
    const bytes = jpeg(60_000);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', now: clock });
    await files.store({ ...queued, bytes });
    expect(row(queued.mediaRowId)).toMatchObject({ state: 'stored', sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(row(queued.mediaRowId).content?.equals(bytes)).toBe(true);
    expect(warnings.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('media writer thread did not store the file; storing it on the core thread');
  });

  it('refuses to store the file of a message erased meanwhile, and storing the same bytes twice is harmless', async () => {
    const bytes = jpeg(40_000);
    const erased = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', now: clock });
    t.db.prepare('DELETE FROM outbox WHERE message_id = ?').run(erased.messageId);
    t.db.prepare('DELETE FROM messages WHERE id = ?').run(erased.messageId);
    await expect(files.store({ ...erased, bytes })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const kept = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', now: clock });
    await files.store({ ...kept, bytes });
    await files.store({ ...kept, bytes });
    expect(row(kept.mediaRowId).content?.equals(bytes)).toBe(true);
  });
});
