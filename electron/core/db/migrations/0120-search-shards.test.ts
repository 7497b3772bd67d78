import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';
import { searchMessages } from '../repo/search';
import { ALL_SHARDS, SEARCH_SHARDS, shardCommand, shardTable } from '../searchShards';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0120-search-shards', () => {
  it('moves a version-110 search index into one shard per conversation id mod 16, kept in step by triggers', () => {
    t = createTestDb({ version: 110 });
    const { db } = t;
    seedThread(db);
    db.prepare(`INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (2, '15550002', 1, 1)`).run();
    db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (18, 2, '110', 5, 1, 1)`).run();
    db.prepare(
      `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (2, 18, 'wamid.B', 'inbound', 'text', 'Rezept für Müller', '{}', 7, 8, 'received')`,
    ).run();

    expect(migrate(db, { target: 120 }).applied).toEqual([120]);
    expect(schemaVersion(db)).toBe(120);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name`).pluck().all();
    expect(tables).toEqual(ALL_SHARDS.map(shardTable).sort());
    expect(tables).toHaveLength(SEARCH_SHARDS);
    const inShard = (k: number, q: string) => db.prepare(`SELECT rowid FROM ${shardTable(k)} WHERE ${shardTable(k)} MATCH ? ORDER BY rowid`).pluck().all(q);

    // The rows written before the migration are in their shard only (1 % 16 = 1, 18 % 16 = 2).
    expect(inShard(1, 'text : (termin)')).toEqual([1]);
    expect(inShard(2, 'text : (muller)')).toEqual([2]);
    expect(ALL_SHARDS.filter((k) => k !== 1).flatMap((k) => inShard(k, 'termin'))).toEqual([]);
    expect(searchMessages(db, { query: 'Müller' }).items.map((i) => i.messageId)).toEqual([2]);
    expect(searchMessages(db, { query: 'termin', conversationId: 1 }).items.map((i) => i.messageId)).toEqual([1]);

    // New rows, edits, a move to another conversation (another shard) and deletes keep each shard right.
    db.prepare(
      `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (3, 1, 'wamid.C', 'inbound', 'text', 'Befund bitte', '{}', 9, 9, 'received')`,
    ).run();
    expect(inShard(1, 'befund')).toEqual([3]);
    db.prepare(`UPDATE messages SET text = 'Röntgen bitte' WHERE id = 3`).run();
    expect(inShard(1, 'befund')).toEqual([]);
    expect(inShard(1, 'rontgen')).toEqual([3]);
    db.prepare(`UPDATE messages SET conversation_id = 18 WHERE id = 3`).run();
    expect(inShard(1, 'rontgen')).toEqual([]);
    expect(inShard(2, 'rontgen')).toEqual([3]);
    expect(searchMessages(db, { query: 'röntgen', conversationId: 18 }).items.map((i) => i.messageId)).toEqual([3]);
    db.prepare('DELETE FROM messages WHERE id IN (2, 3)').run();
    expect(searchMessages(db, { query: 'müller' }).items).toEqual([]);
    expect(searchMessages(db, { query: 'röntgen' }).items).toEqual([]);
    // Each shard agrees with its view of `messages`, row for row.
    for (const k of ALL_SHARDS) expect(() => shardCommand(db, k, 'integrity-check', 1)).not.toThrow();
    expect(db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'messages_fts'`).pluck().get()).toBe(0);
  });
});
