import { afterEach, describe, expect, it } from 'vitest';
import { appendAudit, verifyAuditChain } from '../../audit/auditLog';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0050-audit-reports', () => {
  it('indexes the audit log and back-fills the patient side table from a version-40 database', () => {
    t = createTestDb({ version: 40 });
    const { db } = t;
    const insert = db.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, prev_hash, hash, hash_version, display_name, session_id)
       VALUES (?, ?, 'anna', 'receptionist', 'read', 'messages.list', ?, 'test', 'ok', ?, ?, ?, 'Anna', 's1')`,
    );
    insert.run(1, 100, '[1,2]', '0'.repeat(64), 'a'.repeat(64), 1);
    insert.run(2, 200, '[]', 'a'.repeat(64), 'b'.repeat(64), 2);
    insert.run(3, 300, '[2]', 'b'.repeat(64), 'c'.repeat(64), 2);
    expect(() => db.prepare('SELECT count(*) FROM audit_contacts').get()).toThrow(/no such table/);

    expect(migrate(db, { target: 50 }).applied).toEqual([50]);
    expect(schemaVersion(db)).toBe(50);
    expect(db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY seq, contact_id').all()).toEqual([
      { contact_id: 1, at: 100, seq: 1 },
      { contact_id: 2, at: 100, seq: 1 },
      { contact_id: 2, at: 300, seq: 3 },
    ]);
    // The entries themselves are untouched and still append-only.
    expect(db.prepare('SELECT seq, contact_ids, hash FROM audit_log ORDER BY seq').all()).toEqual([
      { seq: 1, contact_ids: '[1,2]', hash: 'a'.repeat(64) },
      { seq: 2, contact_ids: '[]', hash: 'b'.repeat(64) },
      { seq: 3, contact_ids: '[2]', hash: 'c'.repeat(64) },
    ]);
    expect(() => db.prepare('UPDATE audit_log SET user_id = ? WHERE seq = 1').run('x')).toThrow(/append-only/);
    const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' AND name LIKE 'audit_log_by_%' ORDER BY name`).pluck().all();
    expect(indexes).toEqual(['audit_log_by_action', 'audit_log_by_at', 'audit_log_by_session', 'audit_log_by_user']);
    // "Who accessed patient 2" is a lookup in the side table's key, not a scan of the log.
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT seq FROM audit_contacts WHERE contact_id = 2 ORDER BY at DESC, seq DESC`).all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/SEARCH audit_contacts USING PRIMARY KEY \(contact_id=\?\)/);
  });

  it('new entries appended after the migration land in the side table and chain on', () => {
    t = createTestDb();
    appendAudit(t.db, { userId: 'anna', displayName: 'Anna', role: 'receptionist', sessionId: 's1', action: 'read', method: 'messages.list', contactIds: [5], origin: 'test', outcome: 'ok' }, 10);
    expect(t.db.prepare('SELECT contact_id FROM audit_contacts').pluck().all()).toEqual([5]);
    expect(verifyAuditChain(t.db).ok).toBe(true);
  });
});
