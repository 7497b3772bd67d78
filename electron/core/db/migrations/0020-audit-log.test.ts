import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0020-audit-log', () => {
  it('adds the audit log to a version-10 database and keeps its messages', () => {
    t = createTestDb({ version: 10 });
    const { db } = t;
    seedThread(db);

    expect(migrate(db, { target: 20 }).applied).toEqual([20]);
    expect(schemaVersion(db)).toBe(20);
    expect(db.prepare('SELECT text FROM messages WHERE id = 1').get()).toEqual({ text: 'Termin' });

    db.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, prev_hash, hash)
       VALUES (1, 1, 'u', 'receptionist', 'read', 'messages.list', '[1]', 'test', 'ok', '00', 'h1')`,
    ).run();
    expect(() => db.prepare(`UPDATE audit_log SET user_id = 'x'`).run()).toThrow(/append-only/);
    expect(() => db.prepare(`DELETE FROM audit_log`).run()).toThrow(/append-only/);
    expect(db.prepare('SELECT count(*) AS n FROM audit_log').get()).toEqual({ n: 1 });
  });
});
