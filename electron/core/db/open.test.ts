import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import { createTestDb, type TestDb } from '../testing/testDb';
import { SCHEMA_VERSION, migrate } from './migrate';
import { MIGRATIONS } from './migrations';
import { openDatabase } from './open';
import type { Database } from './types';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CodedError ? err.code : `not coded: ${String(err)}`;
  }
  return undefined;
}

describe('openDatabase', () => {
  it('opens with WAL, secure_delete, in-memory temp store and foreign keys, at the newest schema', () => {
    t = createTestDb();
    const { db } = t;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('secure_delete', { simple: true })).toBe(1);
    expect(db.pragma('temp_store', { simple: true })).toBe(2);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });

  it('refuses a wrong key with DATABASE_LOCKED and leaves the file byte for byte as it was', () => {
    t = createTestDb();
    t.db.prepare(`INSERT INTO settings (key, value, updated_at) VALUES ('a', 'b', 1)`).run();
    t.db.pragma('wal_checkpoint(TRUNCATE)');
    t.db.close();
    const before = readFileSync(t.path);
    const mtime = statSync(t.path).mtimeMs;
    expect(codeOf(() => openDatabase({ path: t!.path, key: randomBytes(32) }))).toBe('DATABASE_LOCKED');
    expect(readFileSync(t.path).equals(before)).toBe(true);
    expect(statSync(t.path).mtimeMs).toBe(mtime);
    // The right key still opens it and the row is there.
    const { db } = openDatabase({ path: t.path, key: t.key });
    expect(db.prepare(`SELECT value FROM settings WHERE key = 'a'`).pluck().get()).toBe('b');
    db.close();
  });

  it('refuses a database written by a newer build with DATABASE_TOO_NEW and does not touch it', () => {
    t = createTestDb();
    t.db.pragma(`user_version = ${SCHEMA_VERSION + 10}`);
    t.db.close();
    expect(codeOf(() => openDatabase({ path: t!.path, key: t!.key }))).toBe('DATABASE_TOO_NEW');
    const { db } = openDatabase({ path: t.path, key: t.key, migrate: false });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 10);
    expect(codeOf(() => migrate(db))).toBe('DATABASE_TOO_NEW');
    db.close();
    expect(codeOf(() => openDatabase({ path: t!.path, key: t!.key, readonly: true }))).toBe('DATABASE_TOO_NEW');
  });

  it('rolls a failing migration back whole', () => {
    t = createTestDb();
    const broken = [
      ...MIGRATIONS,
      {
        version: SCHEMA_VERSION + 10,
        name: 'broken',
        up: (d: Database) => {
          d.exec('CREATE TABLE half_done (x INTEGER)');
          throw new Error('boom');
        },
      },
    ];
    expect(() => migrate(t!.db, { migrations: broken })).toThrow('boom');
    expect(t.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(t.db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'half_done'`).pluck().get()).toBe(0);
  });
});
