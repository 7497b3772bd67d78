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

/**
 * One patient's thread written straight into a migration test's database, with the columns every
 * schema version since the first has: contact 1 (wa_id 15550001), conversation 1 and one inbound
 * text message 'Termin' (wamid.A). Tests check it survives the migration under test.
 */
export function seedThread(db: Database, contentJson = '{}'): void {
  db.prepare(`INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '15550001', 1, 1)`).run();
  db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (1, 1, '110', 5, 1, 1)`).run();
  db.prepare(
    `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
     VALUES (1, 1, 'wamid.A', 'inbound', 'text', 'Termin', ?, 5, 6, 'received')`,
  ).run(contentJson);
}
