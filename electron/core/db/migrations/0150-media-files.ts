import type { Database } from '../types';

/**
 * Schema version 150: a media row's bytes may live in an encrypted file beside the database
 * (`media/fileStore.ts`) instead of `content`: `file_name` names it, `file_key` is its own random
 * AES-256-GCM key, kept only here. Deleting or clearing the row deletes the key (secure_delete
 * zeroes its page), so the file is unreadable from then on, wherever a copy of it went.
 *
 * The same commit that drops a row's file records its name in `media_file_trash` (by trigger, so
 * every way a row goes, erasure, retention, a message deleted for everyone or its cascade, is
 * covered); the file is unlinked after the commit and the name removed. Only the random name is
 * kept there, never a key.
 *
 * `media_by_age` (retention's walk over stored media) covers both kinds of stored bytes.
 */
export const version = 150;
export const name = 'media-files';

export function up(db: Database): void {
  db.exec(`
    ALTER TABLE media ADD COLUMN file_name TEXT;
    ALTER TABLE media ADD COLUMN file_key BLOB;
    CREATE UNIQUE INDEX media_by_file ON media (file_name) WHERE file_name IS NOT NULL;
    DROP INDEX media_by_age;
    CREATE INDEX media_by_age ON media (created_at) WHERE content IS NOT NULL OR file_name IS NOT NULL;

    CREATE TABLE media_file_trash (name TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
    CREATE TRIGGER media_file_deleted AFTER DELETE ON media WHEN old.file_name IS NOT NULL
      BEGIN INSERT OR IGNORE INTO media_file_trash (name) VALUES (old.file_name); END;
    CREATE TRIGGER media_file_replaced AFTER UPDATE OF file_name ON media WHEN old.file_name IS NOT NULL AND new.file_name IS NOT old.file_name
      BEGIN INSERT OR IGNORE INTO media_file_trash (name) VALUES (old.file_name); END;
  `);
}
