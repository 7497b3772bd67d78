import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import { applyCipherKey } from '../db/open';
import { readMediaBytes, storeOutboundContent } from '../db/repo/media';
import type { Database } from '../db/types';
import { mediaDirOf } from '../media/fileStore';
import { seedConversation } from '../outbox/outboxFixtures';
import { queueMediaSend } from '../outbox/sendService';
import { createTestDb, type TestDb } from '../testing/testDb';
import { stagedRestorePath, stageRestore } from './restore';
import { stopWorker } from './runWorker';
import { createBackupService } from './service';

const INSTALLATION = 'mediafilesbackuptest000000';

function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-backup-media-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('a backup of a clinic whose images are files beside the database', () => {
  let t: TestDb;
  let folder: ReturnType<typeof tempDataDir>;
  let target: ReturnType<typeof tempDataDir>;
  let image: { mediaRowId: number; bytes: Buffer };

  beforeEach(() => {
    t = createTestDb();
    folder = tempDataDir();
    target = tempDataDir();
    const { conversationId } = seedConversation(t.db, { waId: '15555550101', phoneNumberId: '110000000000001', lastInboundAt: 1 });
    const bytes = randomBytes(1024 * 1024);
    const { mediaRowId } = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', filename: 'xray.jpg', now: 2 });
    storeOutboundContent(t.db, { mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: 2 });
    image = { mediaRowId, bytes };
    expect(t.db.prepare('SELECT file_name IS NOT NULL FROM media WHERE id = ?').pluck().get(mediaRowId)).toBe(1);
  });
  afterEach(() => {
    t.cleanup();
    folder.remove();
    target.remove();
  });
  afterAll(() => stopWorker());

  const service = () => createBackupService({ db: t.db, dataDir: t.dir, databasePath: t.path, installationId: INSTALLATION, databaseKey: t.key, now: Date.now, logger: pino({ level: 'silent' }) });

  it('holds the image inline, so a restore into a folder without the files has the same bytes', async () => {
    const entry = await service().runNow('manual', folder.dir);
    expect(entry.verified).toBe(true);
    await stageRestore({ dataDir: target.dir, file: entry.file, databaseKey: t.key, installationId: INSTALLATION, liveLedger: [] });
    // Opened as stock SQLCipher would, with the raw key: the bytes are in the row, no file named.
    const restored = new Sqlite(stagedRestorePath(target.dir)) as unknown as Database;
    try {
      applyCipherKey(restored, t.key);
      expect(restored.prepare('SELECT file_name, file_key FROM media WHERE id = ?').get(image.mediaRowId)).toEqual({ file_name: null, file_key: null });
      expect(restored.prepare('SELECT count(*) FROM media_file_trash').pluck().get()).toBe(0);
      expect(readMediaBytes(restored, image.mediaRowId, mediaDirOf(join(target.dir, 'x.db')))?.equals(image.bytes)).toBe(true);
    } finally {
      restored.close();
    }
    // The live database keeps its file.
    expect(t.db.prepare('SELECT file_name IS NOT NULL FROM media WHERE id = ?').pluck().get(image.mediaRowId)).toBe(1);
    expect(readMediaBytes(t.db, image.mediaRowId)?.equals(image.bytes)).toBe(true);
  }, 60_000);

  it('fails, naming the media row, when a file is damaged, and writes no backup without the image', async () => {
    const dir = mediaDirOf(t.path);
    const [name] = readdirSync(dir);
    const onDisk = readFileSync(join(dir, name!));
    onDisk[onDisk.length - 1] = onDisk.at(-1)! ^ 0x80;
    writeFileSync(join(dir, name!), onDisk);
    const failed = await service().runNow('manual', folder.dir).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(CodedError);
    expect((failed as CodedError).message).toMatch(new RegExp(`media ${image.mediaRowId} .*damaged or was altered`));
    expect(readdirSync(folder.dir)).toEqual([]);
    expect(t.db.prepare(`SELECT outcome FROM backup_runs ORDER BY id DESC LIMIT 1`).pluck().get()).toBe('failed');
  }, 60_000);
});
