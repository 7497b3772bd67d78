import { generateKeyPairSync, verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointPayload } from '../../../shared/wire';
import { createTestDb, type TestDb } from '../testing/testDb';
import { AUDIT_COLUMNS, appendAudit, compareWithWitness, entryHash, GENESIS_HASH, makeCheckpoint, verifyAuditChain } from './auditLog';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const read = (contactIds: number[]) => ({
  userId: 'anna',
  displayName: 'Anna',
  role: 'receptionist',
  sessionId: 's_1',
  action: 'read' as const,
  method: 'messages.list',
  contactIds,
  origin: 'test',
  outcome: 'ok' as const,
});

/** Rewrites a row the way an attacker with the key would: triggers dropped, row edited, triggers back. */
function tamper(db: TestDb['db'], sql: string): void {
  db.exec('DROP TRIGGER audit_log_append_only_update; DROP TRIGGER audit_log_append_only_delete;');
  db.exec(sql);
}

describe('audit log', () => {
  it('chains entries and verifies the whole chain', () => {
    t = createTestDb();
    for (let i = 1; i <= 5; i++) appendAudit(t.db, read([i]), 1000 + i);
    const verdict = verifyAuditChain(t.db);
    expect(verdict).toMatchObject({ ok: true, entries: 5, head: { seq: 5 } });
  });

  it('shows an edited entry', () => {
    t = createTestDb();
    for (let i = 1; i <= 4; i++) appendAudit(t.db, read([i]), 1000 + i);
    tamper(t.db, `UPDATE audit_log SET contact_ids = '[99]' WHERE seq = 2`);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('shows a deleted entry in the middle', () => {
    t = createTestDb();
    for (let i = 1; i <= 4; i++) appendAudit(t.db, read([i]), 1000 + i);
    tamper(t.db, `DELETE FROM audit_log WHERE seq = 3`);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: 3 });
  });

  it('a deleted tail passes the chain check but not the witness check', () => {
    t = createTestDb();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    for (let i = 1; i <= 6; i++) appendAudit(t.db, read([i]), 1000 + i);
    const signed = makeCheckpoint(t.db, 'appliance-1', privateKey, 2000);
    expect(signed).not.toBeNull();
    const ok = verify(null, Buffer.from(checkpointPayload('appliance-1', signed!.checkpoint)), publicKey, Buffer.from(signed!.signature, 'base64url'));
    expect(ok).toBe(true);
    expect(compareWithWitness(t.db, signed)).toEqual({ ok: true, witnessedSeq: 6 });

    tamper(t.db, `DELETE FROM audit_log WHERE seq >= 5`);
    expect(verifyAuditChain(t.db).ok).toBe(true);
    expect(compareWithWitness(t.db, signed)).toMatchObject({ ok: false });
  });

  it('names every patient of an entry in the side table, in the same transaction', () => {
    t = createTestDb();
    appendAudit(t.db, read([7, 3, 7]), 1001);
    appendAudit(t.db, read([]), 1002);
    appendAudit(t.db, read([3]), 1003);
    expect(t.db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY seq, contact_id').all()).toEqual([
      { contact_id: 3, at: 1001, seq: 1 },
      { contact_id: 7, at: 1001, seq: 1 },
      { contact_id: 3, at: 1003, seq: 3 },
    ]);
    expect(t.db.prepare('SELECT contact_ids FROM audit_log WHERE seq = 1').pluck().get()).toBe('[3,7]');
    // An entry that cannot be written leaves no side rows behind.
    t.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'full'); END`);
    expect(() => appendAudit(t!.db, read([9]), 1004)).toThrow(/full/);
    expect(t.db.prepare('SELECT count(*) FROM audit_contacts WHERE contact_id = 9').pluck().get()).toBe(0);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 3 });
  });

  it('verifies entries written before accounts (hash version 1) and catches an edit among them', () => {
    t = createTestDb();
    // Two entries as the build before accounts chained them, then entries of today's version.
    const insert = t.db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (${AUDIT_COLUMNS.split(', ').map(() => '?').join(', ')})`);
    let prev = GENESIS_HASH;
    for (const seq of [1, 2]) {
      const fields = { seq, at: 900 + seq, user_id: 'desk', display_name: null, role: 'admin', session_id: null, action: 'read', method: 'messages.list', contact_ids: `[${seq}]`, origin: 'electron', outcome: 'ok', error_code: null, reason: null, hash_version: 1, prev_hash: prev };
      prev = entryHash(fields);
      insert.run(...Object.values(fields), prev);
    }
    for (let i = 3; i <= 5; i++) appendAudit(t.db, read([i]), 1000 + i);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 5 });
    tamper(t.db, `UPDATE audit_log SET contact_ids = '[99]' WHERE seq = 2`);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: 2, reason: 'entry 2 was altered' });
  });

  it('an entry whose SQL-built text differs from the hashed text is checked whole, and the walk goes on after it', () => {
    t = createTestDb();
    for (let i = 1; i <= 5; i++) appendAudit(t.db, read([i]), i === 2 ? 2 ** 60 : 1000 + i);
    // SQLite writes 2^60 with all its digits, JSON.stringify as the double JS reads: the texts differ.
    expect(t.db.prepare('SELECT json_array(at) FROM audit_log WHERE seq = 2').pluck().get()).not.toBe(JSON.stringify([2 ** 60]));
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 5 });
    tamper(t.db, `UPDATE audit_log SET user_id = 'mallory' WHERE seq = 4`);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: 4, reason: 'entry 4 was altered' });
  });
});
