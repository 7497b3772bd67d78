import type { Database } from '../types';

/**
 * Schema version 40: local accounts, sessions, break-the-glass grants and security alerts, and
 * the audit log's NEN 7513 fields.
 *
 * - `users`: the password and PIN as argon2id hashes, the TOTP secret sealed under a key derived
 *   from the database key (so it is encrypted twice over), the last accepted TOTP step so a code
 *   works once, and the failed sign-in count that drives the delay and the lockout.
 * - `sessions`: one row per sign-in at a desk; an ended session keeps its row (when, why).
 * - `audit_log` gains the display name and session id of who acted; entries written from now on
 *   (`hash_version` 2) chain over the SHA-256 of their fields, so an export can prove the chain
 *   with the digests of the entries it leaves out. Entries written before keep version 1.
 */
export const version = 40;
export const name = 'accounts';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE users (
      id TEXT PRIMARY KEY,
      username TEXT NOT NULL UNIQUE,
      display_name TEXT NOT NULL,
      roles TEXT NOT NULL,
      password_hash TEXT NOT NULL,
      must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
      disabled_at INTEGER,
      totp_secret_sealed TEXT,
      totp_pending_sealed TEXT,
      totp_last_step INTEGER,
      pin_hash TEXT,
      failed_count INTEGER NOT NULL DEFAULT 0,
      last_failed_at INTEGER,
      locked_until INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      last_sign_in_at INTEGER
    ) STRICT;

    CREATE TABLE recovery_codes (
      user_id TEXT NOT NULL REFERENCES users (id),
      code_hash TEXT NOT NULL,
      used_at INTEGER,
      PRIMARY KEY (user_id, code_hash)
    ) STRICT;

    CREATE TABLE sessions (
      id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users (id),
      origin TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('active', 'locked', 'password_change')),
      started_at INTEGER NOT NULL,
      last_active_at INTEGER NOT NULL,
      ended_at INTEGER,
      end_reason TEXT,
      pin_failures INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX sessions_open ON sessions (user_id) WHERE ended_at IS NULL;
    CREATE INDEX sessions_by_origin ON sessions (origin, started_at);

    CREATE TABLE desk_failures (
      origin TEXT PRIMARY KEY,
      failed_count INTEGER NOT NULL,
      last_failed_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE break_glass (
      id INTEGER PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions (id),
      user_id TEXT NOT NULL,
      contact_id INTEGER NOT NULL,
      reason TEXT NOT NULL,
      granted_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX break_glass_by_session ON break_glass (session_id, contact_id);

    CREATE TABLE security_alerts (
      id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      at INTEGER NOT NULL,
      user_id TEXT,
      display_name TEXT,
      origin TEXT,
      count INTEGER,
      acknowledged_at INTEGER,
      acknowledged_by TEXT
    ) STRICT;

    ALTER TABLE audit_log ADD COLUMN display_name TEXT;
    ALTER TABLE audit_log ADD COLUMN session_id TEXT;
    ALTER TABLE audit_log ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
  `);
}
