import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { AUDIT_COLUMNS, appendAudit, compareWithWitness, entryHash, GENESIS_HASH, makeCheckpoint, verifyAuditChain } from '../../audit/auditLog';
import type { AuditRecord } from '../../rpc/dispatch';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const read = (contactIds: number[]): AuditRecord => ({
  userId: 'anna',
  displayName: 'Anna',
  role: 'receptionist',
  sessionId: 's1',
  action: 'read',
  method: 'messages.list',
  contactIds,
  origin: 'desk-1',
  outcome: 'ok',
});

describe('migration 0140-audit-prune-anchor', () => {
  it('keeps every entry of a version-130 log, its verdict and its witness, and still refuses every UPDATE and unanchored DELETE', () => {
    t = createTestDb({ version: 130 });
    const { db } = t;
    const v1 = { seq: 1, at: 100, user_id: 'anna', role: 'receptionist', action: 'read', method: 'messages.list', contact_ids: '[1]', origin: 'electron', outcome: 'ok', error_code: null, reason: null };
    const v1Hash = entryHash({ ...v1, display_name: null, session_id: null, hash_version: 1, prev_hash: GENESIS_HASH });
    db.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash)
       VALUES (@seq, @at, @user_id, @role, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, '${GENESIS_HASH}', '${v1Hash}')`,
    ).run(v1);
    db.prepare('INSERT INTO audit_contacts (contact_id, at, seq) VALUES (1, 100, 1)').run();
    for (let i = 2; i <= 5; i += 1) appendAudit(db, read([i]), i * 100);
    const { privateKey } = generateKeyPairSync('ed25519');
    const witnessed = makeCheckpoint(db, 'appliance-1', privateKey, 600)!;
    const before = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq`).all();
    const contactsBefore = db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY contact_id, at, seq').all();
    const verdictBefore = verifyAuditChain(db);
    expect(verdictBefore).toMatchObject({ ok: true, entries: 5 });

    expect(migrate(db, { target: 140 }).applied).toEqual([140]);
    expect(schemaVersion(db)).toBe(140);

    expect(db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq`).all()).toEqual(before);
    expect(db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY contact_id, at, seq').all()).toEqual(contactsBefore);
    expect(db.prepare('SELECT count(*) FROM audit_anchor').pluck().get()).toBe(0);
    // No anchor: the verdict is the one from entry 1, as before.
    expect(verifyAuditChain(db)).toEqual(verdictBefore);
    expect(compareWithWitness(db, witnessed)).toEqual({ ok: true, witnessedSeq: 5 });
    for (const seq of [1, 5]) expect(() => db.prepare('DELETE FROM audit_log WHERE seq = ?').run(seq)).toThrow(/append-only/);
    expect(() => db.prepare(`UPDATE audit_log SET user_id = 'mallory' WHERE seq = 2`).run()).toThrow(/append-only/);
    expect(db.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(5);
  });
});
