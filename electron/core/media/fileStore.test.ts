import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import { readMediaBytes, storeOutboundContent, sweepMediaFilesAtStart, unlinkDiscardedMediaFiles } from '../db/repo/media';
import { seedConversation } from '../outbox/outboxFixtures';
import { queueMediaSend } from '../outbox/sendService';
import { createTestDb, type TestDb } from '../testing/testDb';
import { FILE_THRESHOLD, mediaDirOf, SWEEP_GRACE_MS, writeMediaFile } from './fileStore';

const clock = Date.UTC(2026, 10, 22, 10, 0, 0);

describe('large outgoing files as encrypted files beside the database', () => {
  let t: TestDb;
  let conversationId: number;
  let dir: string;

  beforeEach(() => {
    t = createTestDb();
    ({ conversationId } = seedConversation(t.db, { waId: '15555550101', phoneNumberId: '110000000000001', lastInboundAt: clock - 60_000 }));
    dir = mediaDirOf(t.path);
  });
  afterEach(() => t.cleanup());

  /** A queued image whose bytes are then stored as the writer thread stores them. */
  function stored(size: number): { mediaRowId: number; messageId: number; bytes: Buffer } {
    const bytes = randomBytes(size);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', filename: 'scan.jpg', now: clock });
    expect(storeOutboundContent(t.db, { mediaRowId: queued.mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: clock })).toBe(true);
    return { mediaRowId: queued.mediaRowId, messageId: queued.messageId, bytes };
  }
  const fileOf = (mediaRowId: number) => t.db.prepare('SELECT file_name FROM media WHERE id = ?').pluck().get(mediaRowId) as string | null;
  const refused = (mediaRowId: number, why: RegExp) => {
    expect(() => readMediaBytes(t.db, mediaRowId)).toThrow(CodedError);
    expect(() => readMediaBytes(t.db, mediaRowId)).toThrow(why);
  };

  it('stores a file from the threshold on as ciphertext in its own file and reads the same bytes back; a smaller one stays in the database', () => {
    const big = stored(FILE_THRESHOLD);
    const name = fileOf(big.mediaRowId)!;
    expect(readdirSync(dir)).toEqual([name]);
    const onDisk = readFileSync(join(dir, name));
    // Header, nonce, ciphertext, tag: none of the image's bytes in the clear.
    expect(onDisk.length).toBe(4 + 12 + big.bytes.length + 16);
    expect(onDisk.includes(big.bytes.subarray(1000, 1032))).toBe(false);
    expect(readMediaBytes(t.db, big.mediaRowId)?.equals(big.bytes)).toBe(true);
    expect(t.db.prepare('SELECT content FROM media WHERE id = ?').pluck().get(big.mediaRowId)).toBeNull();

    const small = stored(FILE_THRESHOLD - 1);
    expect(fileOf(small.mediaRowId)).toBeNull();
    expect(readMediaBytes(t.db, small.mediaRowId)?.equals(small.bytes)).toBe(true);
    expect(readdirSync(dir)).toEqual([name]);
  });

  it('refuses a tampered, truncated, swapped, wrongly keyed or missing file with a clear error, never other bytes', () => {
    const a = stored(300_000);
    const b = stored(300_000);
    const pathOf = (id: number) => join(dir, fileOf(id)!);
    const original = readFileSync(pathOf(a.mediaRowId));

    const flipped = Buffer.from(original);
    flipped[5000] = flipped[5000]! ^ 0x01;
    writeFileSync(pathOf(a.mediaRowId), flipped);
    refused(a.mediaRowId, /damaged or was altered/);

    writeFileSync(pathOf(a.mediaRowId), original);
    truncateSync(pathOf(a.mediaRowId), original.length - 1);
    refused(a.mediaRowId, /damaged or was altered/);
    truncateSync(pathOf(a.mediaRowId), 10);
    refused(a.mediaRowId, /is damaged/);

    // b's file under a's name, with a's key or with b's: the row's id is bound in, so neither opens.
    copyFileSync(pathOf(b.mediaRowId), pathOf(a.mediaRowId));
    refused(a.mediaRowId, /damaged or was altered/);
    t.db.prepare('UPDATE media SET file_key = (SELECT file_key FROM media WHERE id = ?) WHERE id = ?').run(b.mediaRowId, a.mediaRowId);
    refused(a.mediaRowId, /damaged or was altered/);

    writeFileSync(pathOf(a.mediaRowId), original);
    t.db.prepare('UPDATE media SET file_key = ? WHERE id = ?').run(randomBytes(32), a.mediaRowId);
    refused(a.mediaRowId, /damaged or was altered/);

    const name = fileOf(b.mediaRowId)!;
    t.db.prepare('UPDATE media SET file_name = ? WHERE id = ?').run('0'.repeat(32), b.mediaRowId);
    refused(b.mediaRowId, /is missing/);
    t.db.prepare('UPDATE media SET file_name = ? WHERE id = ?').run(name, b.mediaRowId);
    expect(readMediaBytes(t.db, b.mediaRowId)?.equals(b.bytes)).toBe(true);
  });

  it('unlinks the file after the commit that deletes its row, and a copy taken before opens with nothing left in the database', () => {
    const img = stored(400_000);
    const name = fileOf(img.mediaRowId)!;
    const copy = readFileSync(join(dir, name));
    t.db.prepare('DELETE FROM messages WHERE id = ?').run(img.messageId);
    // The cascade took the row and its key; the name waits for the unlink after the commit.
    expect(t.db.prepare('SELECT count(*) FROM media').pluck().get()).toBe(0);
    expect(existsSync(join(dir, name))).toBe(true);
    expect(unlinkDiscardedMediaFiles(t.db)).toBe(1);
    expect(existsSync(join(dir, name))).toBe(false);
    expect(t.db.prepare('SELECT count(*) FROM media_file_trash').pluck().get()).toBe(0);
    // Put back, the copy is a file no row names: unreadable, and swept once old enough.
    writeFileSync(join(dir, name), copy);
    utimesSync(join(dir, name), new Date(clock - SWEEP_GRACE_MS - 1), new Date(clock - SWEEP_GRACE_MS - 1));
    expect(sweepMediaFilesAtStart(t.db, clock)).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a crash between the file and its row leaves a file no row names, removed by the sweep once past the grace; the row stays pending', () => {
    const bytes = randomBytes(500_000);
    const queued = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', filename: 'scan.jpg', now: clock });
    // What the writer thread has done when killed just before its commit: the file, fsynced, no row naming it.
    const orphan = writeMediaFile(dir, queued.mediaRowId, bytes);
    writeFileSync(join(dir, `${'e'.repeat(32)}.tmp`), 'a write cut short');
    const kept = stored(300_000);

    // Young files may be a write under way: left alone.
    expect(sweepMediaFilesAtStart(t.db, Date.now())).toBe(0);
    // While a restore keeps the previous database aside (it may be put back), its files stay too.
    writeFileSync(`${t.path}.before-restore`, 'the database a restore replaced');
    expect(sweepMediaFilesAtStart(t.db, Date.now() + SWEEP_GRACE_MS)).toBe(0);
    rmSync(`${t.path}.before-restore`);
    expect(sweepMediaFilesAtStart(t.db, Date.now() + SWEEP_GRACE_MS)).toBe(2);
    expect(readdirSync(dir)).toEqual([fileOf(kept.mediaRowId)]);
    expect(existsSync(join(dir, orphan.fileName))).toBe(false);
    expect(t.db.prepare('SELECT state, file_name FROM media WHERE id = ?').get(queued.mediaRowId)).toEqual({ state: 'pending', file_name: null });
    expect(readMediaBytes(t.db, kept.mediaRowId)?.equals(kept.bytes)).toBe(true);
  });

  it('a write tried again after its row was stored or erased leaves no second file', () => {
    const img = stored(300_000);
    const sha256Hex = createHash('sha256').update(img.bytes).digest('hex');
    expect(storeOutboundContent(t.db, { mediaRowId: img.mediaRowId, bytes: img.bytes, sha256Hex, now: clock })).toBe(true);
    t.db.prepare('DELETE FROM messages WHERE id = ?').run(img.messageId);
    expect(storeOutboundContent(t.db, { mediaRowId: img.mediaRowId, bytes: img.bytes, sha256Hex, now: clock })).toBe(false);
    unlinkDiscardedMediaFiles(t.db);
    expect(readdirSync(dir)).toEqual([]);
  });
});
