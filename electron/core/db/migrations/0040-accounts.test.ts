import { afterEach, describe, expect, it } from 'vitest';
import { appendAudit, entryHash, GENESIS_HASH, verifyAuditChain } from '../../audit/auditLog';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

/** A version-1 audit entry as the build before accounts wrote it (no display name, session, hash version). */
function insertVersion1Entry(db: TestDb['db']): string {
  const fields = {
    seq: 1,
    at: 1_700_000_000_000,
    user_id: 'anna',
    role: 'receptionist',
    action: 'read',
    method: 'messages.list',
    contact_ids: '[1]',
    origin: 'electron',
    outcome: 'ok',
    error_code: null,
    reason: null,
    prev_hash: GENESIS_HASH,
  };
  const hash = entryHash({ ...fields, display_name: null, session_id: null, hash_version: 1 });
  db.prepare(
    `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash)
     VALUES (@seq, @at, @user_id, @role, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, @prev_hash, @hash)`,
  ).run({ ...fields, hash });
  return hash;
}

describe('migration 0040-accounts', () => {
  it('adds accounts to a version-30 database, keeps its conversations, quick replies and audit log, and the old entry still verifies', () => {
    t = createTestDb({ version: 30 });
    const { db } = t;
    seedThread(db);
    db.prepare(`INSERT INTO quick_replies (text, position, created_by, created_at, updated_at) VALUES ('Bis morgen!', 1, 'anna', 7, 7)`).run();
    const oldHash = insertVersion1Entry(db);
    expect(() => db.prepare('SELECT count(*) FROM users').get()).toThrow(/no such table/);

    expect(migrate(db, { target: 40 }).applied).toEqual([40]);
    expect(schemaVersion(db)).toBe(40);
    expect(db.prepare('SELECT text FROM messages WHERE id = 1').get()).toEqual({ text: 'Termin' });
    expect(db.prepare('SELECT text FROM quick_replies').pluck().all()).toEqual(['Bis morgen!']);
    expect(db.prepare('SELECT seq, hash, hash_version, display_name, session_id FROM audit_log').all()).toEqual([
      { seq: 1, hash: oldHash, hash_version: 1, display_name: null, session_id: null },
    ]);
    expect(verifyAuditChain(db)).toEqual({ ok: true, entries: 1, head: { seq: 1, hash: oldHash } });

    // Today's build (later migrations too) writes version-2 entries chained onto the old one; the chain verifies end to end.
    migrate(db);
    appendAudit(
      db,
      { userId: 'u_1', displayName: 'Anna', role: 'receptionist', sessionId: 's_1', action: 'login', method: 'auth.signIn', contactIds: [], origin: 'electron', outcome: 'ok' },
      1_700_000_001_000,
    );
    expect(db.prepare('SELECT hash_version, prev_hash, display_name, session_id FROM audit_log WHERE seq = 2').get()).toEqual({
      hash_version: 2,
      prev_hash: oldHash,
      display_name: 'Anna',
      session_id: 's_1',
    });
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, entries: 2 });
    // Still append-only after the new columns.
    expect(() => db.prepare(`UPDATE audit_log SET display_name = 'x' WHERE seq = 1`).run()).toThrow();
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 1').run()).toThrow();
  });

  it('creates the accounts tables with their constraints', () => {
    t = createTestDb({ version: 40 });
    const { db } = t;
    const user = db.prepare(
      `INSERT INTO users (id, username, display_name, roles, password_hash, must_change_password, created_at, updated_at) VALUES (?, ?, 'A', '["admin"]', 'h', ?, ?, 1)`,
    );
    user.run('u_1', 'anna', 0, 1);
    expect(db.prepare('SELECT failed_count, disabled_at, totp_secret_sealed, pin_hash FROM users').get()).toEqual({
      failed_count: 0,
      disabled_at: null,
      totp_secret_sealed: null,
      pin_hash: null,
    });
    expect(() => user.run('u_2', 'anna', 0, 1)).toThrow(/UNIQUE/);
    expect(() => user.run('u_3', 'bram', 2, 1)).toThrow(/CHECK/);
    expect(() => user.run('u_4', 'cees', 0, 'yesterday')).toThrow(/cannot store TEXT value in INTEGER column/);

    const session = db.prepare(`INSERT INTO sessions (id, user_id, origin, state, started_at, last_active_at) VALUES (?, ?, 'desk', ?, 1, 1)`);
    session.run('s_1', 'u_1', 'active');
    expect(db.prepare('SELECT ended_at, pin_failures FROM sessions').get()).toEqual({ ended_at: null, pin_failures: 0 });
    expect(() => session.run('s_2', 'u_1', 'asleep')).toThrow(/CHECK/);
    expect(() => session.run('s_3', 'u_nobody', 'active')).toThrow(/FOREIGN KEY/);

    const code = db.prepare(`INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, 'c1')`);
    code.run('u_1');
    expect(() => code.run('u_1')).toThrow(/UNIQUE|PRIMARY KEY/);
    expect(() => code.run('u_nobody')).toThrow(/FOREIGN KEY/);

    const glass = db.prepare(`INSERT INTO break_glass (session_id, user_id, contact_id, reason, granted_at, expires_at) VALUES (?, 'u_1', 1, 'why', 1, 2)`);
    glass.run('s_1');
    expect(() => glass.run('s_nobody')).toThrow(/FOREIGN KEY/);

    const desk = db.prepare(`INSERT INTO desk_failures (origin, failed_count, last_failed_at) VALUES ('desk', 1, 1)`);
    desk.run();
    expect(() => desk.run()).toThrow(/UNIQUE|PRIMARY KEY/);
    db.prepare(`INSERT INTO security_alerts (kind, at) VALUES ('failed_sign_ins', 1)`).run();
    expect(db.prepare('SELECT acknowledged_at FROM security_alerts').pluck().get()).toBeNull();
  });
});
