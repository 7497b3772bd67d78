import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0030-quick-replies', () => {
  it('adds the quick replies table to a version-20 database and keeps its messages and audit log', () => {
    t = createTestDb({ version: 20 });
    const { db } = t;
    seedThread(db);
    db.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, prev_hash, hash)
       VALUES (1, 1, 'u', 'receptionist', 'read', 'messages.list', '[1]', 'test', 'ok', '00', 'h1')`,
    ).run();
    expect(() => db.prepare('SELECT count(*) FROM quick_replies').get()).toThrow(/no such table/);

    expect(migrate(db, { target: 30 }).applied).toEqual([30]);
    expect(schemaVersion(db)).toBe(30);
    expect(db.prepare('SELECT text FROM messages WHERE id = 1').get()).toEqual({ text: 'Termin' });
    expect(db.prepare('SELECT count(*) AS n FROM audit_log').get()).toEqual({ n: 1 });

    const insert = db.prepare(`INSERT INTO quick_replies (text, position, created_by, created_at, updated_at) VALUES (?, ?, 'u', 7, 7)`);
    insert.run('Ihr Rezept liegt bereit.', 1);
    insert.run('Bis morgen!', 2);
    expect(db.prepare('SELECT text, position, created_by, created_at FROM quick_replies ORDER BY position').all()).toEqual([
      { text: 'Ihr Rezept liegt bereit.', position: 1, created_by: 'u', created_at: 7 },
      { text: 'Bis morgen!', position: 2, created_by: 'u', created_at: 7 },
    ]);
    // The table's own guards: one row per text, never empty, never longer than a WhatsApp text.
    expect(() => insert.run('Bis morgen!', 3)).toThrow(/UNIQUE/);
    expect(() => insert.run('', 3)).toThrow(/CHECK/);
    expect(() => insert.run('x'.repeat(4097), 3)).toThrow(/CHECK/);
    expect(db.prepare('SELECT count(*) AS n FROM quick_replies').get()).toEqual({ n: 2 });
  });
});
