import type { Database } from '../types';

/**
 * Schema version 80: every message shape Meta sends, and nothing lost without a trace.
 *
 * - `messages` gains `edited_at` (the latest edit applied), `revoked_at` (the sender deleted it for
 *   everyone: its text, content and media are gone from the row, the thread and the search index)
 *   and `origin` (`phone`: sent by the clinic from the WhatsApp Business app, an `smb_message_echoes`
 *   echo).
 * - `message_revisions`: one row per edit or revoke event (unique on the event's wamid), holding
 *   the version it replaced, for the audit trail; only an event from the original's own thread and
 *   side (the patient's messages, or the clinic's echoes) is applied. It goes with its message (retention, erasure). A
 *   row with no `message_id` is an edit or revoke whose original has not arrived yet; it is applied
 *   when the original is stored.
 * - `webhook_errors`: value-level errors Meta reports (e.g. 130429 rate limit, 131000), with
 *   Meta's title, message and details, kept for the admin. Unique on a digest of the error and
 *   where it came from, so a redelivered webhook records nothing twice.
 * - `ingest_counts`: running counts of what ingest stored but cannot fully show (unsupported
 *   messages by reason), bumped in the delivery's own transaction.
 * - `dead_letters_by_reason`: the admin's counts of shelved deliveries by reason are an index walk.
 */
export const version = 80;
export const name = 'message-shapes';

export function up(db: Database): void {
  db.exec(`
    ALTER TABLE messages ADD COLUMN edited_at INTEGER;
    ALTER TABLE messages ADD COLUMN revoked_at INTEGER;
    ALTER TABLE messages ADD COLUMN origin TEXT CHECK (origin IS NULL OR origin IN ('phone'));

    CREATE TABLE message_revisions (
      id INTEGER PRIMARY KEY,
      message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
      conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
      direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
      original_wamid TEXT NOT NULL,
      event_wamid TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('edit', 'revoke')),
      new_text TEXT,
      new_content_json TEXT,
      previous_text TEXT,
      previous_content_json TEXT,
      changed_at INTEGER NOT NULL,
      received_at INTEGER NOT NULL,
      applied_at INTEGER
    ) STRICT;
    CREATE INDEX message_revisions_by_message ON message_revisions (message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX message_revisions_pending ON message_revisions (original_wamid) WHERE message_id IS NULL;

    CREATE TABLE webhook_errors (
      id INTEGER PRIMARY KEY,
      digest TEXT NOT NULL UNIQUE,
      phone_number_id TEXT,
      scope TEXT NOT NULL,
      code INTEGER NOT NULL,
      title TEXT,
      message TEXT,
      details TEXT,
      href TEXT,
      received_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_errors_recent ON webhook_errors (received_at DESC, id DESC);

    CREATE TABLE ingest_counts (
      name TEXT PRIMARY KEY,
      count INTEGER NOT NULL,
      last_at INTEGER NOT NULL
    ) STRICT;

    CREATE INDEX dead_letters_by_reason ON dead_letters (reason, stored_at);
  `);
}
