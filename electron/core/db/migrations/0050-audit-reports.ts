import type { Database } from '../types';

/**
 * Schema version 50: the auditor's reports stay fast on a million entries.
 *
 * - Indexes for the auditor's filters, each ending in the time so a page comes newest first
 *   straight off the index (`seq` is the rowid, so every index carries it as the tie-break).
 * - `audit_contacts`: one row per patient an entry concerns, written with the entry, so "who
 *   accessed this patient" is an index lookup rather than a scan of every entry's JSON. It is
 *   derived from `audit_log.contact_ids` (which stays the hashed, append-only record) and back-filled
 *   here for the entries written before.
 */
export const version = 50;
export const name = 'audit-reports';

export function up(db: Database): void {
  db.exec(`
    CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
    CREATE INDEX audit_log_by_action ON audit_log (action, at);
    CREATE INDEX audit_log_by_session ON audit_log (session_id, at) WHERE session_id IS NOT NULL;
    CREATE INDEX audit_log_by_at ON audit_log (at);
    DROP INDEX audit_log_by_contact;

    CREATE TABLE audit_contacts (
      contact_id INTEGER NOT NULL,
      at INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      PRIMARY KEY (contact_id, at, seq)
    ) STRICT, WITHOUT ROWID;

    INSERT INTO audit_contacts (contact_id, at, seq)
      SELECT DISTINCT j.value, a.at, a.seq FROM audit_log a, json_each(a.contact_ids) j
      WHERE a.contact_ids <> '[]' AND j.type = 'integer';
  `);
}
