import { stmt } from './statements';
import type { Database } from './types';

/**
 * The search index (FTS5, external content over `messages`) is split by conversation into
 * SEARCH_SHARDS tables `messages_fts_<k>`, k = conversation id mod SEARCH_SHARDS (schema 120).
 *
 * Why: FTS5 keeps a deleted message's words in its pages until a merge that reaches the oldest
 * segment drops them, and its in-place alternative (secure-delete) costs about a millisecond per
 * message. Erasing a patient therefore rewrites the index that holds them; in one table that is
 * the whole index (2.5 s of CPU on the 1,000,000-message clinic), in a shard it is a sixteenth of
 * it. A search asks every shard and merges their rowid-ordered hits (`repo/search.ts`); a search
 * within one conversation asks its shard alone.
 *
 * The table names and the shard count are fixed by migration 0120; `searchShards.test.ts` checks
 * that a migrated database has exactly these tables.
 */
export const SEARCH_SHARDS = 16;

export const ALL_SHARDS: readonly number[] = Array.from({ length: SEARCH_SHARDS }, (_, k) => k);

export const shardOf = (conversationId: number): number => conversationId % SEARCH_SHARDS;

export const shardTable = (shard: number): string => `messages_fts_${Math.trunc(shard)}`;

/** Runs one of FTS5's special commands ('optimize', 'merge', 'secure-delete', …) on a shard. */
export function shardCommand(db: Database, shard: number, command: string, rank?: number): void {
  const t = shardTable(shard);
  if (rank === undefined) db.exec(`INSERT INTO ${t} (${t}) VALUES ('${command}')`);
  else db.exec(`INSERT INTO ${t} (${t}, rank) VALUES ('${command}', ${Math.trunc(rank)})`);
}

/** The shards holding the given conversations' messages, each once. */
export function shardsOf(conversationIds: readonly number[]): number[] {
  return [...new Set(conversationIds.map(shardOf))].sort((a, b) => a - b);
}

/**
 * For bulk loads (benchmarks' generated clinics): runs `fn` without the per-row index inserts, then
 * indexes every message once per shard ('rebuild') and puts the triggers back.
 */
export function withBulkIndexing<T>(db: Database, fn: () => T): T {
  const triggers = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name GLOB 'messages_fts_*_insert'`).all() as { name: string; sql: string }[];
  for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
  try {
    return fn();
  } finally {
    for (const k of ALL_SHARDS) shardCommand(db, k, 'rebuild');
    for (const t of triggers) db.exec(t.sql);
  }
}

/**
 * A setting of a shard as stored in its config table (FTS5's `<table>_config`), or null when the
 * shard uses FTS5's default for it.
 */
export function shardSetting(db: Database, shard: number, key: string): number | null {
  const v = stmt(db, `SELECT v FROM ${shardTable(shard)}_config WHERE k = ?`).pluck().get(key) as number | undefined;
  return v ?? null;
}

/**
 * How many segments a shard's index has (from FTS5's structure record, rowid 10 of `<table>_data`:
 * a 4-byte cookie, an optional 4-byte version-2 marker, then varints for the level and segment
 * counts). Every search reads every segment of every shard, so merging keeps this small.
 */
export function shardSegmentCount(db: Database, shard: number): number {
  const b = stmt(db, `SELECT block FROM ${shardTable(shard)}_data WHERE id = 10`).pluck().get() as Buffer | undefined;
  if (!b) return 0;
  let i = b[4] === 0xff && b[5] === 0 && b[6] === 0 && b[7] === 1 ? 8 : 4;
  const varint = () => {
    let v = 0;
    for (;;) {
      const x = b[i++]!;
      v = v * 128 + (x & 127);
      if (!(x & 128)) return v;
    }
  };
  varint(); // levels
  return varint();
}
