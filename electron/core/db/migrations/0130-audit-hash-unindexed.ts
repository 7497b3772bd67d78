import type { Database } from '../types';

/**
 * Schema version 130: the audit log's `hash` column loses its UNIQUE constraint, and with it the
 * index SQLite kept for it (`sqlite_autoindex_audit_log_1`).
 *
 * Why: no query looks an entry up by its hash (the chain walk, the witness check and the exports
 * go by `seq`), yet every entry paid for that index, on every audited read. A hash is random, so
 * each entry landed on a random leaf of a B-tree as large as the log: a page to read and decrypt
 * and a page (now and then three, when the leaf split) to encrypt and write with the entry. The
 * constraint proved nothing the verifier does not: each hash is SHA-256 over its entry's seq and
 * fields and the previous hash, and `audit.verify` recomputes every one, so an entry carrying a
 * copied or forged hash breaks the chain whether or not the column is unique.
 *
 * SQLite cannot drop a constraint's index, so the table is rebuilt the way its documentation
 * prescribes: a new table of the same columns in the same order with the same types and checks,
 * every row copied as stored (the hashed bytes and the hashes do not change, so every chain and
 * every relay witness keeps verifying), the old table dropped (its pages are zeroed:
 * `secure_delete` is on), the new one renamed, then its append-only triggers and the auditor's
 * indexes made again. `audit_contacts` and `audit_checkpoints` refer to entries by `seq` and are
 * untouched. On a 1,000,000-entry log this costs about half a minute of CPU, once (`docs/it-admin.md`).
 */
export const version = 130;
export const name = 'audit-hash-unindexed';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE audit_log_130 (
      seq INTEGER PRIMARY KEY CHECK (seq > 0),
      at INTEGER NOT NULL,
      user_id TEXT NOT NULL,
      role TEXT NOT NULL,
      action TEXT NOT NULL,
      method TEXT NOT NULL,
      contact_ids TEXT NOT NULL,
      origin TEXT NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
      error_code TEXT,
      reason TEXT,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL,
      display_name TEXT,
      session_id TEXT,
      hash_version INTEGER NOT NULL DEFAULT 1
    ) STRICT;
    INSERT INTO audit_log_130 (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash, display_name, session_id, hash_version)
      SELECT seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash, display_name, session_id, hash_version
      FROM audit_log ORDER BY seq;
    DROP TABLE audit_log;
    ALTER TABLE audit_log_130 RENAME TO audit_log;

    CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
    CREATE INDEX audit_log_by_action ON audit_log (action, at);
    CREATE INDEX audit_log_by_session ON audit_log (session_id, at) WHERE session_id IS NOT NULL;
    CREATE INDEX audit_log_by_at ON audit_log (at);
  `);
}
