import { ALL_SHARDS, shardCommand } from '../db/searchShards';
import type { Database } from '../db/types';

/**
 * Taking deleted messages out of the search index (FTS5, one table per shard of conversations:
 * `db/searchShards.ts`) for real, without holding the database longer than needed.
 *
 * The index's own `secure-delete` edits every segment in place for each (word, message) deleted:
 * measured on the 1,000,000-message clinic, about 1.1 ms per message (10,000 messages: 11-14 s in
 * one transaction, a larger page cache did not help: it is CPU, one multi-segment seek per word;
 * 0.8 ms per message even on the 100,000-message clinic). Without it a delete only writes a delete
 * marker, and the patient's words stay in the old segment pages (and in the marker itself) until a
 * merge that includes the oldest segment drops them. So bulk deletes here write markers
 * (`withIndexDeleteMarkers`, inside the caller's transaction), and then the shards they touched are
 * merged into one segment each: by an erasure inside its own transaction (`mergeShardsNow`: one
 * shard of sixteen is about 0.2 s of CPU at 1M messages), or by retention in steps
 * (`purgeSearchIndex`: 'merge' with a negative page count, all segments on one level, as few as
 * two merged), each step its own short IMMEDIATE transaction. The merged-away segment pages are
 * deleted, and `secure_delete` (on for every connection) zeroes them, so after the merge and a
 * checkpoint no page of the file holds the deleted words.
 */

/**
 * Runs `fn` (which deletes messages) with the given shards writing delete markers instead of
 * editing segments in place (all shards unless told which ones `fn` deletes from). The caller
 * holds the transaction, so no other connection ever sees the setting off; the caller must merge
 * those shards (`mergeShardsNow` or `purgeSearchIndex`).
 */
export function withIndexDeleteMarkers<T>(db: Database, fn: () => T, shards: readonly number[] = ALL_SHARDS): T {
  for (const k of shards) shardCommand(db, k, 'secure-delete', 0);
  const result = fn();
  for (const k of shards) shardCommand(db, k, 'secure-delete', 1);
  return result;
}

/**
 * Merges each given shard into one segment now, in the caller's transaction: the delete markers
 * and the words they cover leave the shard's pages with the commit.
 */
export function mergeShardsNow(db: Database, shards: readonly number[]): void {
  for (const k of shards) shardCommand(db, k, 'optimize');
}

/**
 * Runs one short IMMEDIATE transaction without waiting for its commit to reach the disk
 * (`synchronous = NORMAL` for it alone, FULL again right after; nothing else can run on the
 * connection in between). For work that is redone when lost: a retention batch or a purge step
 * undone by a power cut is done again by the next run, while an fsync per batch would put the
 * disk's latency (measured up to 100+ ms on a busy machine) into every hold. The next FULL commit
 * syncs the WAL, these frames included.
 */
export function redoableTransaction<T>(db: Database, fn: () => T): T {
  const previous = db.pragma('synchronous', { simple: true }) as number;
  const autoCheckpoint = db.pragma('wal_autocheckpoint', { simple: true }) as number;
  db.pragma('synchronous = NORMAL');
  // The WAL's automatic checkpoint would run inside this commit (copying and syncing a thousand
  // pages); `checkpointBetween` runs it between batches instead, outside any transaction.
  db.pragma('wal_autocheckpoint = 0');
  try {
    return db.transaction(fn).immediate();
  } finally {
    db.pragma(`synchronous = ${previous}`);
    db.pragma(`wal_autocheckpoint = ${autoCheckpoint}`);
  }
}

/**
 * A PASSIVE checkpoint between batches (it holds no lock that writers or readers wait on, and
 * gives up on pages a reader still needs); returns how long it took, which the caller reports
 * apart from its holds.
 */
export function checkpointBetween(db: Database): number {
  const t0 = performance.now();
  db.pragma('wal_checkpoint(PASSIVE)');
  return performance.now() - t0;
}

export interface PurgeOptions {
  /** The longest a single step may hold the database (ms). Steps aim at a third of it. */
  budgetMs?: number;
  /** Between steps: lets other work (the inbox, ingest) run. */
  pause?: () => Promise<void>;
}

export interface PurgeResult {
  steps: number;
  longestHoldMs: number;
  /** The longest checkpoint between steps (the event loop busy, the database not held). */
  longestCheckpointMs: number;
  ms: number;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));

/**
 * Merges every shard of the search index in time-bounded steps until a step finds nothing to
 * merge in it (FTS5 reports work through `total_changes()`: a difference of 2 or more). The step
 * size (pages written) adapts to the measured time per page. Safe to run at any time and from any
 * connection; a crash between steps leaves a consistent index, and the next run continues.
 */
export async function purgeSearchIndex(db: Database, options: PurgeOptions = {}): Promise<PurgeResult> {
  const budget = options.budgetMs ?? 50;
  const pause = options.pause ?? immediate;
  const aim = budget / 3;
  const changes = db.prepare('SELECT total_changes()').pluck();
  const started = performance.now();
  let pages = 16;
  let msPerPage = 1;
  let steps = 0;
  let longest = 0;
  let longestCheckpoint = 0;
  for (const k of ALL_SHARDS) {
    for (;;) {
      if (!db.open) return { steps, longestHoldMs: longest, longestCheckpointMs: longestCheckpoint, ms: performance.now() - started };
      const before = changes.get() as number;
      const t0 = performance.now();
      redoableTransaction(db, () => shardCommand(db, k, 'merge', -pages));
      const ms = performance.now() - t0;
      steps += 1;
      longest = Math.max(longest, ms);
      if ((changes.get() as number) - before < 2) break;
      // A slow step (the process was descheduled) moves the estimate only partly.
      msPerPage = msPerPage * 0.5 + (ms / pages) * 0.5;
      pages = Math.max(4, Math.min(2_000, Math.floor(aim / msPerPage)));
      longestCheckpoint = Math.max(longestCheckpoint, checkpointBetween(db));
      await pause();
    }
  }
  return { steps, longestHoldMs: longest, longestCheckpointMs: longestCheckpoint, ms: performance.now() - started };
}
