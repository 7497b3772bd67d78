import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open';
import { readMediaBytes, sweepMediaFilesAtStart } from '../db/repo/media';
import { seedConversation } from '../outbox/outboxFixtures';
import { createTestDb, type TestDb } from '../testing/testDb';
import { mediaDirOf, SWEEP_GRACE_MS } from './fileStore';

const CHILD = fileURLToPath(new URL('./fileCrashChild.ts', import.meta.url));

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

/** Runs the child until it has stored a few files, then SIGKILLs it `afterMs` later. */
async function killWhileStoring(path: string, key: Buffer, conversationId: number, afterMs: number): Promise<void> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(conversationId)], { env: { ...process.env, TEST_DB_KEY_HEX: key.toString('hex') }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (chunk: Buffer) => void (chunk.toString().includes('STORING') && resolve()));
    proc.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  await new Promise((r) => setTimeout(r, afterMs));
  proc.kill('SIGKILL');
  await exited;
}

describe('outgoing files across SIGKILL (real child process, real SQLCipher file)', () => {
  it('never leaves a row naming a missing or unreadable file; what a kill left half-done is a pending row and files the sweep removes', async () => {
    t = createTestDb();
    const { path, key } = t;
    const { conversationId } = seedConversation(t.db, { waId: '15555550101', phoneNumberId: '110000000000001', lastInboundAt: Date.now() - 60_000 });
    t.db.close();
    for (const afterMs of [7, 23, 41]) {
      await killWhileStoring(path, key, conversationId, afterMs);
      // The restart: the database as the disk holds it after the kill.
      const { db } = openDatabase({ path, key });
      try {
        const rows = db.prepare('SELECT id, state, sha256, file_name FROM media ORDER BY id').all() as { id: number; state: string; sha256: string | null; file_name: string | null }[];
        const stored = rows.filter((r) => r.state === 'stored');
        expect(stored.length).toBeGreaterThanOrEqual(3);
        for (const r of stored) {
          expect(r.file_name).not.toBeNull();
          expect(createHash('sha256').update(readMediaBytes(db, r.id)!).digest('hex')).toBe(r.sha256);
        }
        // At most the row being stored when the kill came is left pending, with no file named.
        expect(rows.filter((r) => r.state !== 'stored').every((r) => r.state === 'pending' && r.file_name === null)).toBe(true);
        sweepMediaFilesAtStart(db, Date.now() + SWEEP_GRACE_MS);
        expect(readdirSync(mediaDirOf(path)).sort()).toEqual(stored.map((r) => r.file_name).sort());
      } finally {
        db.close();
      }
    }
  }, 60_000);
});
