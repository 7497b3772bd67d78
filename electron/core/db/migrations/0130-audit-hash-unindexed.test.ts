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

const uniqueIndexes = (db: TestDb['db']) =>
  (db.prepare(`SELECT name, "unique" FROM pragma_index_list('audit_log')`).all() as { name: string; unique: number }[]).filter((i) => i.unique === 1).map((i) => i.name);

describe('migration 0130-audit-hash-unindexed', () => {
  it('drops the index on the hash of a version-120 log and keeps every entry, its chain and its witness as they were', () => {
    t = createTestDb({ version: 120 });
    const { db } = t;
    // An installation's log: an entry from before accounts (hash version 1), then version-2 entries.
    const v1 = { seq: 1, at: 100, user_id: 'anna', role: 'receptionist', action: 'read', method: 'messages.list', contact_ids: '[1]', origin: 'electron', outcome: 'ok', error_code: null, reason: null };
    const v1Hash = entryHash({ ...v1, display_name: null, session_id: null, hash_version: 1, prev_hash: GENESIS_HASH });
    db.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash)
       VALUES (@seq, @at, @user_id, @role, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, '${GENESIS_HASH}', '${v1Hash}')`,
    ).run(v1);
    db.prepare('INSERT INTO audit_contacts (contact_id, at, seq) VALUES (1, 100, 1)').run();
    appendAudit(db, read([2]), 200);
    appendAudit(db, { ...read([]), action: 'login', method: 'auth.signIn' }, 300);
    appendAudit(db, { ...read([2, 3]), reason: 'break the glass: urgent' }, 400);
    const { privateKey } = generateKeyPairSync('ed25519');
    const witnessed = makeCheckpoint(db, 'appliance-1', privateKey, 500)!;
    const before = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq`).all();
    const contactsBefore = db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY contact_id, at, seq').all();
    const verdictBefore = verifyAuditChain(db);
    expect(verdictBefore).toMatchObject({ ok: true, entries: 4 });
    expect(uniqueIndexes(db)).toEqual(['sqlite_autoindex_audit_log_1']);

    expect(migrate(db, { target: 130 }).applied).toEqual([130]);
    expect(schemaVersion(db)).toBe(130);

    // Stored exactly as before: the same bytes are hashed, the same hashes kept, the chain and the relay's witness agree.
    expect(uniqueIndexes(db)).toEqual([]);
    expect(db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq`).all()).toEqual(before);
    expect(db.prepare('SELECT contact_id, at, seq FROM audit_contacts ORDER BY contact_id, at, seq').all()).toEqual(contactsBefore);
    expect(verifyAuditChain(db)).toEqual(verdictBefore);
    expect(compareWithWitness(db, witnessed)).toEqual({ ok: true, witnessedSeq: 4 });

    // Still append-only, still indexed for the auditor's filters and the anomaly counts.
    expect(() => db.prepare('UPDATE audit_log SET user_id = ? WHERE seq = 2').run('mallory')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 4').run()).toThrow(/append-only/);
    const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' ORDER BY name`).pluck().all();
    expect(indexes).toEqual(['audit_log_by_action', 'audit_log_by_at', 'audit_log_by_session', 'audit_log_by_user']);
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT seq FROM audit_log WHERE user_id = 'anna' AND at >= 0 ORDER BY at DESC`).all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING (COVERING )?INDEX audit_log_by_user/);

    // New entries chain on from the old head.
    const next = appendAudit(db, read([3]), 600);
    expect(db.prepare('SELECT prev_hash FROM audit_log WHERE seq = ?').pluck().get(next.seq)).toBe(verdictBefore.ok ? verdictBefore.head!.hash : null);
    expect(verifyAuditChain(db)).toEqual({ ok: true, entries: 5, head: next });
    expect(db.prepare('SELECT contact_id FROM audit_contacts WHERE seq = ?').pluck().all(next.seq)).toEqual([3]);
  });

  it('leaves the chain as tamper-evident as before: an edited entry or a copied hash still breaks it', () => {
    t = createTestDb({ version: 120 });
    const { db } = t;
    for (let i = 1; i <= 4; i += 1) appendAudit(db, read([i]), i * 100);
    migrate(db, { target: 130 });
    db.exec('DROP TRIGGER audit_log_append_only_update');
    // Without the unique index a second entry may carry an earlier entry's hash, and the verifier names it.
    const second = db.prepare('SELECT hash FROM audit_log WHERE seq = 2').pluck().get() as string;
    db.prepare('UPDATE audit_log SET hash = ? WHERE seq = 3').run(second);
    expect(verifyAuditChain(db)).toMatchObject({ ok: false, brokenAt: 3 });
    db.prepare('UPDATE audit_log SET user_id = ? WHERE seq = 1').run('mallory');
    expect(verifyAuditChain(db)).toMatchObject({ ok: false, brokenAt: 1, reason: 'entry 1 was altered' });
  });
});
