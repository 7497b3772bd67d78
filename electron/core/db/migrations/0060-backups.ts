import type { Database } from '../types';

/**
 * Schema version 60: backups and what stays erased.
 *
 * - `backup_key`: the random key backups are encrypted with (one row), wrapped with AES-256-GCM
 *   under a key derived from the database key, so the running appliance backs up without the
 *   recovery key. A backup file carries the same wrapped copy and the recovery-key file, so a new
 *   computer opens it with the recovery key alone.
 * - `backup_runs`: the journal of backups made from this database (the admin's status: last good
 *   backup, last failure; a missed run is counted). Not patient data.
 * - `erasure_ledger`: one row per contact erased on request: keyed hashes (HMAC-SHA256 under a key
 *   derived from the database key) of each identifier the contact had (wa_id, BSUID), when, by whom.
 *   It travels in every later backup, and a restore of an older backup erases them again.
 */
export const version = 60;
export const name = 'backups';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE backup_key (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      salt TEXT NOT NULL,
      iv TEXT NOT NULL,
      wrapped TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE backup_runs (
      id INTEGER PRIMARY KEY,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'restore', 'migration', 'erasure', 'console')),
      outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'missed')),
      file_name TEXT,
      bytes INTEGER,
      error_code TEXT
    ) STRICT;
    CREATE INDEX backup_runs_by_outcome ON backup_runs (outcome, started_at);

    CREATE TABLE erasure_ledger (
      id INTEGER PRIMARY KEY,
      identifiers_hash TEXT NOT NULL CHECK (json_valid(identifiers_hash)),
      erased_at INTEGER NOT NULL,
      erased_by TEXT NOT NULL
    ) STRICT;
  `);
}
