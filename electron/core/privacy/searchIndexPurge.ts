import { ALL_SHARDS, shardCommand, shardSetting } from '../db/searchShards';
import type { Database } from '../db/types';
import { createHoldSizer } from './holdSizer';

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
 * (`createIndexMerger`: 'merge' with a negative page count, all segments on one level, as few as
 * two merged), each step its own short IMMEDIATE transaction. Retention's batches also keep FTS5's
 * own merging out of their transactions (`withDeferredIndexMerges`) and the merger does it
 * between them, in steps. The merged-away segment pages are
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

/** FTS5's own defaults (fts5Int.h) for a shard whose config table does not set them. */
const FTS5_DEFAULT_AUTOMERGE = 4;
const FTS5_DEFAULT_CRISISMERGE = 16;
/**
 * The crisis-merge threshold inside a retention batch: far above what a batch adds to a shard (one
 * level-0 segment when its rows go in id order, a few when FTS5's 1 MB of pending entries fills),
 * so it never fires in practice, and far below FTS5's limit of 2,000 segments per index, at which
 * writes fail (SQLITE_FULL) instead. Should it fire, it merges only that batch's small segments.
 */
const BATCH_CRISISMERGE = 256;

/**
 * Runs `fn` (bulk deletes, inside the caller's transaction) with every shard it announces through
 * `touch(shard)`, before its first delete there, writing delete markers (secure-delete off) and
 * doing none of FTS5's merge work: automerge off and the crisis merge out of reach. That work is
 * what made single deletes long (FTS5 writes its pending entries to a new segment when they fill
 * or when a row id goes backwards, and then merges, up to 76 ms of CPU inside one DELETE). The
 * caller does it afterwards in bounded steps (`createIndexMerger`'s `keepUp`, then `purge`).
 *
 * The settings are put back before returning, inside the same transaction: no other connection,
 * and no database left by a crash, ever sees them changed. Order matters: FTS5 writes out a
 * shard's pending entries before it changes a setting, under the settings as they were, so
 * automerge goes back first (the batch's segment is written with merging still off), then the
 * crisis merge (nothing pending any more), then secure-delete. Returns the shards touched.
 */
export function withDeferredIndexMerges<T>(db: Database, fn: (touch: (shard: number) => void) => T): { result: T; shards: number[] } {
  const saved = new Map<number, { automerge: number; crisismerge: number }>();
  const touch = (k: number) => {
    if (saved.has(k)) return;
    saved.set(k, {
      automerge: shardSetting(db, k, 'automerge') ?? FTS5_DEFAULT_AUTOMERGE,
      crisismerge: shardSetting(db, k, 'crisismerge') ?? FTS5_DEFAULT_CRISISMERGE,
    });
    shardCommand(db, k, 'secure-delete', 0);
    shardCommand(db, k, 'automerge', 0);
    shardCommand(db, k, 'crisismerge', BATCH_CRISISMERGE);
  };
  const result = fn(touch);
  for (const [k, v] of saved) {
    shardCommand(db, k, 'automerge', v.automerge);
    shardCommand(db, k, 'crisismerge', v.crisismerge);
    shardCommand(db, k, 'secure-delete', 1);
  }
  return { result, shards: [...saved.keys()].sort((a, b) => a - b) };
}

export interface MergeStep {
  shard: number;
  /** `level`: FTS5's automerge done in steps; `all`: every segment into one (the purge). */
  mode: 'level' | 'all';
  ms: number;
  cpuMs: number;
  pages: number;
  probed?: Record<string, number>;
}

export interface PurgeOptions {
  /** The longest a single step may hold the database (ms). Steps aim at a third of it. */
  budgetMs?: number;
  /** Between steps: lets other work (the inbox, ingest) run. */
  pause?: () => Promise<void>;
  /** Told of every step, timed around its transaction (wall clock and this process's CPU time). */
  onStep?: (step: MergeStep) => void;
  /** Read before and after every step, outside its timing; the step carries the difference. */
  probe?: () => Record<string, number>;
}

export interface PurgeResult {
  steps: number;
  longestHoldMs: number;
  /** The longest checkpoint between steps (the event loop busy, the database not held). */
  longestCheckpointMs: number;
  ms: number;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));
const cpuMsOf = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

/** The probe's counts since `before` (read now), or nothing without a probe. */
export function probedBetween(before: Record<string, number> | undefined, probe: (() => Record<string, number>) | undefined): { probed?: Record<string, number> } {
  if (!before || !probe) return {};
  const after = probe();
  return { probed: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)])) };
}

export interface IndexMerger {
  /**
   * What automerge would have done after the given shards' new segments, in steps: merges each
   * level that holds `usermerge` (4) segments or more, until none does, so a shard keeps a few
   * segments per level (every search reads all of them) however many batches wrote to it.
   */
  keepUp(shards: readonly number[]): Promise<void>;
  /** Merges every segment of each shard into one, dropping the delete markers and the words they cover. */
  purge(shards?: readonly number[]): Promise<void>;
  result(): PurgeResult;
}

/**
 * Merges shards of the search index in time-bounded steps, each its own short IMMEDIATE
 * transaction ('merge' with a page count: positive merges levels of 4+ segments, negative every
 * segment, as few as two at a time), with a checkpoint and a pause between steps, until a step
 * finds nothing to merge in the shard (FTS5 reports work through `total_changes()`: a difference
 * of 2 or more). The step size (pages written) adapts to the measured time per page, one estimate
 * for all shards and both kinds of step. Safe at any time and from any connection; a crash
 * between steps leaves a consistent index, and the next run continues.
 */
export function createIndexMerger(db: Database, options: PurgeOptions = {}): IndexMerger {
  const budget = options.budgetMs ?? 50;
  const pause = options.pause ?? immediate;
  // A fifth: the time per page differs between levels and shards, and at a third the longest of
  // 3,647 steps at 1M messages came to 62 ms. Per page written, not asked for: a merge of small
  // segments ends after a few pages, and timing it per requested page made the next step (a large
  // level) far too long (145 ms of CPU at 1M messages). Every page written is at least one changed
  // row. One estimate for all shards and both kinds of step.
  const sizer = createHoldSizer({ aimMs: budget / 5, perUnitMs: budget / 5 / 16, min: 4, max: 2_000, growth: 1.5, release: 0.5 });
  const changes = db.prepare('SELECT total_changes()').pluck();
  const started = performance.now();
  let steps = 0;
  let longest = 0;
  let longestCheckpoint = 0;
  const untilDone = async (k: number, mode: 'level' | 'all') => {
    for (;;) {
      if (!db.open) return;
      const before = changes.get() as number;
      const pages = sizer.size();
      const p0 = options.probe?.();
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      redoableTransaction(db, () => shardCommand(db, k, 'merge', mode === 'all' ? -pages : pages));
      const ms = performance.now() - t0;
      const cpuMs = cpuMsOf(process.cpuUsage(cpu0));
      options.onStep?.({ shard: k, mode, ms, cpuMs, pages, ...probedBetween(p0, options.probe) });
      steps += 1;
      longest = Math.max(longest, ms);
      const changed = (changes.get() as number) - before;
      if (changed < 2) return;
      sizer.observe(Math.min(pages, changed), ms);
      longestCheckpoint = Math.max(longestCheckpoint, checkpointBetween(db));
      await pause();
    }
  };
  return {
    async keepUp(shards) {
      for (const k of shards) await untilDone(k, 'level');
    },
    async purge(shards = ALL_SHARDS) {
      for (const k of shards) await untilDone(k, 'all');
    },
    result: () => ({ steps, longestHoldMs: longest, longestCheckpointMs: longestCheckpoint, ms: performance.now() - started }),
  };
}

/**
 * Merges every shard of the search index into one segment each, in time-bounded steps
 * (`createIndexMerger`).
 */
export async function purgeSearchIndex(db: Database, options: PurgeOptions = {}): Promise<PurgeResult> {
  const merger = createIndexMerger(db, options);
  await merger.purge();
  return merger.result();
}
