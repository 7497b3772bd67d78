import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../db/open';
import type { Database } from '../db/types';

export interface TestDb {
  db: Database;
  dir: string;
  path: string;
  key: Buffer;
  /** Closes the database and removes its folder. */
  cleanup(): void;
}

/**
 * A fresh encrypted database in its own temp folder with a random key (no keychain: for unit
 * tests of repositories and ingest). `version` stops migrations there (migration tests); `0`
 * leaves it empty.
 */
export function createTestDb(options: { version?: number } = {}): TestDb {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-inbox-db-'));
  const path = join(dir, 'test.db');
  const key = randomBytes(32);
  const { db } = openDatabase({
    path,
    key,
    ...(options.version === undefined ? {} : { targetVersion: options.version }),
  });
  return {
    db,
    dir,
    path,
    key,
    cleanup() {
      if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
