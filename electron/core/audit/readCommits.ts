import type { Statement } from 'better-sqlite3-multiple-ciphers';
import type { Logger } from 'pino';
import type { Database } from '../db/types';
import type { AuditRecord } from '../rpc/dispatch';
import { appendAudit } from './auditLog';

/** What a call does to the database, as the dispatch knows it before the call runs. */
export type CallKind = 'read' | 'write';

/** The settings row a flush writes: the audit entry the log is durable through (and when). */
export const DURABLE_THROUGH_KEY = 'audit.durable_through_seq';

export interface AuditCommitsDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  /** After each entry is appended, inside the call's transaction (the anomaly watch). */
  afterAppend?: (record: AuditRecord) => void;
  /** How long a read's entry may stay only in the OS's page cache; 1 s by default. */
  flushAfterMs?: number;
}

export interface AuditCommits {
  /** The dispatch's `atomically`: a read call whose only write is its own audit entry commits without an fsync. */
  atomically<T>(fn: () => T, kind?: CallKind): T;
  /** The dispatch's `audit`: appends the entry (and counts its rows toward the call's own). */
  audit(record: AuditRecord): void;
  /** Makes every entry committed so far durable on the disk (one fsync), if any is waiting. */
  flush(): void;
  /** Flushes and stops the timer; before the database closes. */
  close(): void;
  /** Commits made without an fsync and not yet flushed (tests, benchmarks). */
  pending(): number;
  /** How many flushes ran (benchmarks). */
  flushes(): number;
}

/**
 * How audited calls commit. A call that changes state commits with `synchronous=FULL`: the WAL is
 * fsynced before the answer. A read (opening a thread, a contact, an export) writes only its audit
 * entry; that commit runs with `synchronous=NORMAL`, so it is in the WAL file — the OS holds it —
 * before the answer goes out, but the disk may not yet. An application crash (a SIGKILL, an
 * Electron crash) therefore loses nothing; a power cut or an OS crash can lose the read entries of
 * the last `flushAfterMs` (1 s), never a state change and never the chain's integrity (WAL frames
 * are checksummed: what survives is a prefix). A flush — a FULL commit of the durable-through marker,
 * which fsyncs the WAL with every frame before it — runs that long after the first unflushed read,
 * and on close. Any FULL commit in between (a send, a sign-in, a checkpoint for the relay) makes the
 * earlier reads durable as well.
 *
 * A read call that turns out to write more than its own entries (an anomaly alert, a handler that
 * updates a row) is flushed before its answer, so it is as durable as any other write.
 *
 * A read's commit also never runs SQLite's automatic WAL checkpoint: with it, every read that took
 * the WAL past `wal_autocheckpoint` pages (about one in 140 on a busy desk) copied the whole WAL into
 * the database file and fsynced both before the receptionist saw the thread. The checkpoint is left
 * to the next ordinary commit, which is the flush at the latest: its FULL commit finds the WAL over
 * the threshold and checkpoints there, on the timer, between calls. The setting is whatever the
 * connection had (a media send's hold of 0 stays 0, `db/checkpoints.ts`).
 */
export function createAuditCommits(deps: AuditCommitsDeps): AuditCommits {
  const { db, now, logger } = deps;
  const flushAfterMs = deps.flushAfterMs ?? 1000;
  const inTransaction = db.transaction((fn: () => unknown) => fn());
  // The safety level may not change inside a transaction; it applies to each commit after it is set.
  const relax = db.prepare('PRAGMA synchronous = NORMAL');
  const restore = db.prepare('PRAGMA synchronous = FULL');
  // A prepared pragma acts when it is (re)compiled, so a prepared read of the setting would answer
  // what it was when prepared: it is read afresh. A setting takes no bound value: one statement per
  // value seen (the default, or another the connection was given).
  const setAutoCheckpoint = new Map<number, Statement<[]>>();
  const autoCheckpointTo = (pages: number) => {
    let stmt = setAutoCheckpoint.get(pages);
    if (!stmt) setAutoCheckpoint.set(pages, (stmt = db.prepare<[]>(`PRAGMA wal_autocheckpoint = ${Math.trunc(pages)}`)));
    stmt.get();
  };
  const totalChanges = db.prepare('SELECT total_changes()').pluck();
  const head = db.prepare('SELECT max(seq) FROM audit_log').pluck();
  const mark = db.prepare(
    `INSERT INTO settings (key, value, updated_at) VALUES ('${DURABLE_THROUGH_KEY}', ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  );

  let unflushed = 0;
  let flushCount = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  /** Rows the current read call's own audit entries wrote (the log and its patient side table). */
  let ownRows = 0;

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    if (unflushed === 0 || !db.open) return;
    if (db.inTransaction) {
      schedule();
      return;
    }
    try {
      mark.run(String(head.get() ?? 0), now());
      unflushed = 0;
      flushCount += 1;
    } catch (err) {
      // Nothing is lost yet (the entries are in the WAL); try again on the next tick.
      logger.error({ err: err instanceof Error ? err.name : typeof err }, 'audit flush failed');
      schedule();
    }
  }

  function schedule(): void {
    if (timer) return;
    timer = setTimeout(flush, flushAfterMs);
    timer.unref();
  }

  function atomically<T>(fn: () => T, kind: CallKind = 'write'): T {
    // Nested inside a caller's transaction, or a write: the caller's commit (FULL) decides.
    if (kind === 'write' || db.inTransaction) return inTransaction(fn) as T;
    const before = totalChanges.get() as number;
    ownRows = 0;
    const checkpointAt = db.pragma('wal_autocheckpoint', { simple: true }) as number;
    relax.run();
    if (checkpointAt > 0) autoCheckpointTo(0);
    let value: T;
    try {
      value = inTransaction(fn) as T;
    } finally {
      restore.run();
      if (checkpointAt > 0) autoCheckpointTo(checkpointAt);
    }
    const written = (totalChanges.get() as number) - before;
    if (written > 0) {
      unflushed += 1;
      if (written > ownRows) flush();
      else schedule();
    }
    return value;
  }

  return {
    atomically,
    audit(record) {
      appendAudit(db, record, now());
      ownRows += 1 + new Set(record.contactIds).size;
      deps.afterAppend?.(record);
    },
    flush,
    close() {
      flush();
      if (timer) clearTimeout(timer);
      timer = null;
    },
    pending: () => unflushed,
    flushes: () => flushCount,
  };
}
