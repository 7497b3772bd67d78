import type { Database } from '../types';

/**
 * Schema version 20: the tamper-evident audit log and the dead-letter shelf.
 *
 * - `audit_log` is append-only: triggers refuse UPDATE and DELETE, and every entry carries the
 *   hash of the one before it, so an edit anywhere breaks the chain from there on. Deleting the
 *   tail would not break the chain by itself; the signed checkpoints kept by the relay show it.
 * - `dead_letters` keep a delivery that was authentic (it opened under the pinned relay key) but
 *   that this version could not read as a webhook at all. Kept, encrypted like everything else,
 *   so a later version can ingest it; never silently dropped.
 */
export const version = 20;
export const name = 'audit-log';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE audit_log (
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
      hash TEXT NOT NULL UNIQUE
    ) STRICT;
    CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE INDEX audit_log_by_contact ON audit_log (contact_ids) WHERE contact_ids <> '[]';

    CREATE TABLE audit_checkpoints (
      seq INTEGER PRIMARY KEY,
      head_hash TEXT NOT NULL,
      at INTEGER NOT NULL,
      signature TEXT NOT NULL,
      witnessed_at INTEGER
    ) STRICT;

    CREATE TABLE dead_letters (
      id INTEGER PRIMARY KEY,
      relay_seq INTEGER,
      received_at INTEGER NOT NULL,
      stored_at INTEGER NOT NULL,
      reason TEXT NOT NULL,
      payload TEXT NOT NULL
    ) STRICT;
  `);
}
