import type { Database } from '../types';

/**
 * Schema version 70: privacy operations.
 *
 * - `consent_events`: every change of a contact's consent (status, source, when, who), newest last;
 *   the current status is the newest row, so the history is never overwritten. Deleted with the
 *   contact (an erasure takes its consent trail with it).
 * - `privacy_requests`: the register of patients' rights requests (GDPR art. 15–17, 20) with their
 *   30-day deadline. `contact_id` has no foreign key on purpose: the register outlives an erasure
 *   (the erasure request itself is the proof it was honoured) and names nothing but the id.
 * - `legal_holds`: one row per patient whose record must be kept (the medical-record duty); it
 *   blocks erasure and retention for that patient.
 * - `retention_policy`: how long each kind of data is kept, never shorter than the legal minimum
 *   the admin picked and never longer than 20 years (7305 days); seeded with the clinic defaults.
 * - `retention_runs`: one row per purge (counts per kind, the longest single hold of the database).
 */
export const version = 70;
export const name = 'privacy';

export const DEFAULT_RETENTION = [
  { kind: 'messages', days: 730 },
  { kind: 'media', days: 365 },
  { kind: 'drafts', days: 30 },
  { kind: 'audit', days: 1826 },
] as const;

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE consent_events (
      id INTEGER PRIMARY KEY,
      contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
      status TEXT NOT NULL CHECK (status IN ('unknown', 'opted_in', 'opted_out')),
      source TEXT NOT NULL CHECK (source IN ('patient_wrote', 'form', 'desk', 'imported', 'keyword', 'meta')),
      recorded_at INTEGER NOT NULL,
      recorded_by TEXT NOT NULL,
      note TEXT
    ) STRICT;
    CREATE INDEX consent_events_by_contact ON consent_events (contact_id, id);

    CREATE TABLE privacy_requests (
      id INTEGER PRIMARY KEY,
      contact_id INTEGER NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('access', 'portability', 'erasure', 'rectification')),
      received_at INTEGER NOT NULL,
      via TEXT NOT NULL CHECK (via IN ('desk', 'whatsapp')),
      registered_by TEXT NOT NULL,
      due_at INTEGER NOT NULL,
      note TEXT,
      done_at INTEGER,
      done_by TEXT,
      outcome TEXT,
      CHECK ((done_at IS NULL) = (done_by IS NULL))
    ) STRICT;
    CREATE INDEX privacy_requests_open ON privacy_requests (due_at) WHERE done_at IS NULL;
    CREATE INDEX privacy_requests_by_contact ON privacy_requests (contact_id, received_at);

    CREATE TABLE legal_holds (
      contact_id INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
      reason TEXT NOT NULL CHECK (length(reason) >= 3),
      set_by TEXT NOT NULL,
      set_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE retention_policy (
      kind TEXT PRIMARY KEY CHECK (kind IN ('messages', 'media', 'drafts', 'audit')),
      days INTEGER NOT NULL,
      legal_minimum_days INTEGER NOT NULL DEFAULT 0,
      updated_at INTEGER NOT NULL,
      updated_by TEXT NOT NULL,
      CHECK (legal_minimum_days >= 0 AND days >= legal_minimum_days AND days >= 1 AND days <= 7305)
    ) STRICT;

    CREATE TABLE retention_runs (
      id INTEGER PRIMARY KEY,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
      counts_json TEXT CHECK (counts_json IS NULL OR json_valid(counts_json)),
      longest_hold_ms REAL,
      outcome TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'failed'))
    ) STRICT;

    -- Retention walks conversations by last activity and media by age.
    CREATE INDEX media_by_age ON media (created_at) WHERE content IS NOT NULL;
  `);
  const seed = db.prepare(`INSERT INTO retention_policy (kind, days, legal_minimum_days, updated_at, updated_by) VALUES (?, ?, 0, 0, 'default')`);
  for (const p of DEFAULT_RETENTION) seed.run(p.kind, p.days);
}
