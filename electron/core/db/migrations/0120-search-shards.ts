import type { Database } from '../types';

/**
 * Schema version 120: the search index split by conversation into 16 FTS5 tables.
 *
 * `messages_fts` becomes `messages_fts_0` … `messages_fts_15`; a message is indexed in shard
 * `conversation_id % 16`, each shard external-content over a view of its own messages (so FTS5's
 * 'rebuild' and 'integrity-check' see exactly the rows the shard holds). Same columns, tokenizer
 * and `secure-delete` setting as before. Why: erasing a patient must rewrite every index page
 * that held their words, and with one table that was the whole index; now it is the shard (or
 * the few shards) of their conversations (`db/searchShards.ts`, `privacy/README.md`). Search asks
 * every shard and merges by message id, which keeps its results and order as they were.
 *
 * Each shard has its own insert and delete triggers guarded by `WHEN`, so a row costs one trigger
 * body, not sixteen. An update deletes from the old shard before inserting into the new one (the
 * same shard when the conversation did not change). The old table is dropped (its pages are
 * zeroed: `secure_delete` is on) and each shard is built once from `messages`, which costs about
 * a minute and a half of CPU on a 1,000,000-message clinic, once.
 */
export const version = 120;
export const name = 'search-shards';

const SHARDS = 16;

export function up(db: Database): void {
  db.exec(`
    DROP TRIGGER messages_fts_insert;
    DROP TRIGGER messages_fts_delete;
    DROP TRIGGER messages_fts_update;
    DROP TABLE messages_fts;
  `);
  for (let k = 0; k < SHARDS; k += 1) {
    const t = `messages_fts_${k}`;
    db.exec(`
      CREATE VIEW messages_shard_${k} AS SELECT id, text, conversation_id FROM messages WHERE conversation_id % ${SHARDS} = ${k};
      CREATE VIRTUAL TABLE ${t} USING fts5 (
        text,
        conversation_id,
        content = 'messages_shard_${k}',
        content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
      );
      INSERT INTO ${t} (${t}, rank) VALUES ('secure-delete', 1);
      INSERT INTO ${t} (${t}) VALUES ('rebuild');

      CREATE TRIGGER ${t}_insert AFTER INSERT ON messages WHEN new.conversation_id % ${SHARDS} = ${k} BEGIN
        INSERT INTO ${t} (rowid, text, conversation_id) VALUES (new.id, new.text, new.conversation_id);
      END;
      CREATE TRIGGER ${t}_delete AFTER DELETE ON messages WHEN old.conversation_id % ${SHARDS} = ${k} BEGIN
        INSERT INTO ${t} (${t}, rowid, text, conversation_id) VALUES ('delete', old.id, old.text, old.conversation_id);
      END;
      CREATE TRIGGER ${t}_update AFTER UPDATE OF text, conversation_id ON messages
        WHEN old.conversation_id % ${SHARDS} = ${k} OR new.conversation_id % ${SHARDS} = ${k} BEGIN
        INSERT INTO ${t} (${t}, rowid, text, conversation_id) SELECT 'delete', old.id, old.text, old.conversation_id WHERE old.conversation_id % ${SHARDS} = ${k};
        INSERT INTO ${t} (rowid, text, conversation_id) SELECT new.id, new.text, new.conversation_id WHERE new.conversation_id % ${SHARDS} = ${k};
      END;
    `);
  }
}
