import type { Database } from '../types';

/**
 * Schema version 10: the first shape of the appliance's store.
 *
 * Design notes (why, not what):
 * - Tables are STRICT so a wrong type from a bug fails loudly instead of being stored as text.
 * - A contact is known by its phone-number id (`wa_id`), its business-scoped user id (`user_id`,
 *   Meta's BSUID, 2026), or both; either may be missing, never both.
 * - `message_statuses` is keyed by wamid, not by message row, because Meta may deliver a status
 *   before the message it belongs to (or for a message sent from another device); `applied_at`
 *   stays NULL until the message appears.
 * - `reactions` keep a row with an empty emoji when removed so a late, older "add" cannot bring a
 *   removed reaction back (last writer by Meta's timestamp wins).
 * - The FTS index is external-content over `messages.text` (plus the conversation id, for scoped
 *   search) with FTS5 `secure-delete`, so text removed by retention does not linger in its pages.
 */
export const version = 10;
export const name = 'initial';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE contacts (
      id INTEGER PRIMARY KEY,
      wa_id TEXT UNIQUE,
      user_id TEXT UNIQUE,
      parent_user_id TEXT,
      username TEXT,
      profile_name TEXT,
      display_name TEXT,
      notes TEXT NOT NULL DEFAULT '',
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      CHECK (wa_id IS NOT NULL OR user_id IS NOT NULL)
    ) STRICT;

    CREATE TABLE conversations (
      id INTEGER PRIMARY KEY,
      contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
      phone_number_id TEXT NOT NULL,
      status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved')),
      assigned_user_id TEXT,
      unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
      last_activity_at INTEGER NOT NULL,
      last_inbound_at INTEGER,
      last_message_id INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      UNIQUE (contact_id, phone_number_id)
    ) STRICT;
    -- One index per inbox filter, each ordered like the keyset the page query walks.
    CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC, id DESC);
    CREATE INDEX conversations_open_by_activity ON conversations (last_activity_at DESC, id DESC)
      WHERE status <> 'resolved';
    CREATE INDEX conversations_unread_by_activity ON conversations (last_activity_at DESC, id DESC)
      WHERE unread_count > 0;
    CREATE INDEX conversations_by_assignee ON conversations (assigned_user_id, last_activity_at DESC, id DESC)
      WHERE assigned_user_id IS NOT NULL;
    CREATE INDEX conversations_by_status ON conversations (status, last_activity_at DESC, id DESC);

    CREATE TABLE messages (
      id INTEGER PRIMARY KEY,
      conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
      wamid TEXT UNIQUE,
      direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
      type TEXT NOT NULL,
      text TEXT,
      content_json TEXT NOT NULL,
      context_wamid TEXT,
      media_id TEXT,
      sent_at INTEGER NOT NULL,
      received_at INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('received', 'pending', 'sent', 'delivered', 'read', 'played', 'failed')),
      status_at INTEGER,
      error_code INTEGER,
      error_title TEXT,
      author_user_id TEXT
    ) STRICT;
    CREATE INDEX messages_thread ON messages (conversation_id, sent_at DESC, id DESC);
    CREATE INDEX messages_by_context ON messages (context_wamid) WHERE context_wamid IS NOT NULL;
    CREATE INDEX messages_by_media ON messages (media_id) WHERE media_id IS NOT NULL;

    CREATE TABLE message_statuses (
      id INTEGER PRIMARY KEY,
      wamid TEXT NOT NULL,
      status TEXT NOT NULL,
      status_at INTEGER NOT NULL,
      error_code INTEGER,
      error_title TEXT,
      raw_json TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      applied_at INTEGER,
      UNIQUE (wamid, status)
    ) STRICT;
    CREATE INDEX message_statuses_unapplied ON message_statuses (wamid) WHERE applied_at IS NULL;

    CREATE TABLE reactions (
      id INTEGER PRIMARY KEY,
      target_wamid TEXT NOT NULL,
      contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
      from_business INTEGER NOT NULL CHECK (from_business IN (0, 1)),
      emoji TEXT NOT NULL,
      reaction_wamid TEXT,
      reacted_at INTEGER NOT NULL,
      UNIQUE (target_wamid, contact_id, from_business)
    ) STRICT;

    CREATE TABLE outbox (
      id TEXT PRIMARY KEY,
      message_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
      kind TEXT NOT NULL,
      request_json TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      last_error_code TEXT,
      last_error_detail TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_by_message ON outbox (message_id) WHERE message_id IS NOT NULL;

    CREATE TABLE media (
      id INTEGER PRIMARY KEY,
      media_id TEXT UNIQUE,
      message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
      mime_type TEXT,
      sha256 TEXT,
      size INTEGER,
      filename TEXT,
      state TEXT NOT NULL CHECK (state IN ('pending', 'downloading', 'stored', 'failed', 'too_large')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      content BLOB,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX media_due ON media (state, next_attempt_at);
    CREATE INDEX media_by_message ON media (message_id) WHERE message_id IS NOT NULL;

    CREATE TABLE templates (
      id INTEGER PRIMARY KEY,
      meta_id TEXT UNIQUE,
      name TEXT NOT NULL,
      language TEXT NOT NULL,
      status TEXT NOT NULL,
      category TEXT,
      components_json TEXT NOT NULL,
      synced_at INTEGER NOT NULL,
      UNIQUE (name, language)
    ) STRICT;

    -- The index also holds each message's conversation id, so search within one conversation is
    -- an intersection of two posting lists inside FTS5 (milliseconds) rather than a walk over
    -- every match of a common word in the whole clinic. Queries name their column
    -- (\`text : (…)\`, \`conversation_id : "12"\`), so numbers a person types never match ids.
    -- Every row is indexed, with or without text, as an external-content 'rebuild' would do, so
    -- the index and the table never disagree.
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
      text,
      conversation_id,
      content = 'messages',
      content_rowid = 'id',
      tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);

    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
      INSERT INTO messages_fts (rowid, text, conversation_id) VALUES (new.id, new.text, new.conversation_id);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
      INSERT INTO messages_fts (messages_fts, rowid, text, conversation_id) VALUES ('delete', old.id, old.text, old.conversation_id);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, conversation_id ON messages BEGIN
      INSERT INTO messages_fts (messages_fts, rowid, text, conversation_id) VALUES ('delete', old.id, old.text, old.conversation_id);
      INSERT INTO messages_fts (rowid, text, conversation_id) VALUES (new.id, new.text, new.conversation_id);
    END;
  `);
}
