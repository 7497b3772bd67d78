// The backup's heavy work, in ONE worker thread reused for every task (started on the first task,
// stopped when idle), so the core's event loop (the inbox, the relay link) stays free while a 1 GB
// database is snapshotted, checked and hashed, and memory does not grow with the number of runs.
import { closeSync, copyFileSync, fsyncSync, mkdtempSync, openSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import { CodedError } from '../../../shared/errors';
import { applyCipherKey } from '../db/open';
import { readMediaBytes } from '../db/repo/media';
import { mediaDirOf } from '../media/fileStore';
import type { Database } from '../db/types';
import { plaintextImageHash, rowCounts } from './format';

export type WorkerTask =
  /** Nothing: the worker is up (the benchmark times its start apart from the backup). */
  | { kind: 'ping' }
  /** `VACUUM INTO` the live database (a consistent read), written directly under the backup key. */
  | { kind: 'snapshot'; livePath: string; databaseKey: string; outPath: string; backupKey: string }
  /**
   * Open read-only: `integrity_check`, row counts, schema version, the erasure ledger, and (unless
   * `hash` is false) the SHA-256 of the plaintext snapshot over its first `bytes` (a backup file's
   * snapshot part; the whole file by default).
   */
  | { kind: 'inspect'; path: string; key: string; bytes?: number; hash?: boolean; integrity?: boolean; counts?: boolean }
  /** The snapshot part of a backup file into a new database file, rekeyed to the database key. */
  | { kind: 'extract'; backupPath: string; snapshotBytes: number; backupKey: string; outPath: string; databaseKey: string };

export interface Inspection {
  integrity: string;
  schemaVersion: number;
  /** Empty when not asked for. */
  contentHash: string;
  rowCounts: Record<string, number>;
  ledger: { identifiersHash: string[]; erasedAt: number; erasedBy: string }[];
  /** Wall time of each part (the benchmark's phase table, the backup log line). */
  ms: { integrity: number; counts: number; hash: number };
}

/**
 * A fixed page cache (32 MiB) for the full passes: each page is decrypted once per pass rather than
 * again for every index lookup of `integrity_check`, and resident memory stays the same whatever
 * the database's size.
 */
const CACHE_KIB = 32_768;

const quote = (s: string) => s.replace(/'/g, "''");
const hexKey = (hex: string) => `"x'${hex}'"`;

const keyed = (path: string, hex: string, readonly: boolean): Database => {
  const db = new Sqlite(path, { readonly, fileMustExist: true }) as unknown as Database;
  try {
    applyCipherKey(db, Buffer.from(hex, 'hex'));
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    db.pragma(`cache_size = -${CACHE_KIB}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
};

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The copy is a scratch file until verified: no journal, one fsync at the end. */
function rekey(path: string, from: string, to: string): void {
  const db = keyed(path, from, false);
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma(`rekey = ${hexKey(to)}`);
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  fsyncFile(path);
}

/**
 * `VACUUM live INTO` from a connection whose main database is keyed with the backup key: SQLite3
 * Multiple Ciphers writes the copy with the main database's key, so the snapshot is encrypted
 * under the backup key as it is written (no second rekey pass over the file, no plaintext page on
 * any disk). The main database is an empty scratch file that is never written.
 */
function snapshot(task: Extract<WorkerTask, { kind: 'snapshot' }>): { vacuumMs: number; fsyncMs: number; inlinedFiles: number } {
  const started = performance.now();
  const scratch = mkdtempSync(join(tmpdir(), 'clinic-backup-'));
  const holder = new Sqlite(join(scratch, 'key-holder.db')) as unknown as Database;
  try {
    applyCipherKey(holder, Buffer.from(task.backupKey, 'hex'));
    holder.exec(`ATTACH DATABASE '${quote(task.livePath)}' AS live KEY ${hexKey(task.databaseKey)}`);
    holder.pragma(`live.cache_size = -${CACHE_KIB}`);
    holder.exec(`VACUUM live INTO '${quote(task.outPath)}'`);
  } finally {
    holder.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  const inlined = inlineMediaFiles(task.outPath, task.backupKey, mediaDirOf(task.livePath));
  const vacuumed = performance.now();
  fsyncFile(task.outPath);
  return { vacuumMs: Math.round(vacuumed - started), fsyncMs: Math.round(performance.now() - vacuumed), inlinedFiles: inlined };
}

/**
 * A backup stands alone and opens in stock SQLCipher: each file-backed media row of the snapshot
 * (`media/fileStore.ts`) gets its bytes inline, read and authenticated through `readMediaBytes`,
 * and loses its file's name and key. A file that is missing or damaged fails the backup with the
 * row's id, rather than a backup silently without that image. The snapshot is a scratch file until
 * verified (no journal; the caller fsyncs it).
 */
function inlineMediaFiles(snapshotPath: string, backupKey: string, liveMediaDir: string): number {
  const db = keyed(snapshotPath, backupKey, false);
  try {
    const ids = db.prepare('SELECT id FROM media WHERE file_name IS NOT NULL').pluck().all() as number[];
    if (ids.length === 0) return 0;
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    const inline = db.prepare('UPDATE media SET content = ?, file_name = NULL, file_key = NULL WHERE id = ?');
    db.transaction(() => {
      for (const id of ids) inline.run(readMediaBytes(db, id, liveMediaDir), id);
      // The names the triggers just listed are the live database's files, not the restored one's.
      db.exec('DELETE FROM media_file_trash');
    })();
    return ids.length;
  } finally {
    db.close();
  }
}

function run(task: WorkerTask): unknown {
  switch (task.kind) {
    case 'ping':
      return null;
    case 'snapshot':
      return snapshot(task);
    case 'inspect': {
      const db = keyed(task.path, task.key, true);
      try {
        let at = performance.now();
        const lap = () => {
          const ms = Math.round(performance.now() - at);
          at = performance.now();
          return ms;
        };
        const integrity = task.integrity === false ? 'ok' : (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
        const integrityMs = lap();
        const schemaVersion = db.pragma('user_version', { simple: true }) as number;
        const pageSize = db.pragma('page_size', { simple: true }) as number;
        const counts = task.counts === false ? {} : rowCounts(db);
        const hasLedger = db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'erasure_ledger'`).get() !== undefined;
        const ledger = hasLedger
          ? (db.prepare('SELECT identifiers_hash AS h, erased_at AS at, erased_by AS by FROM erasure_ledger ORDER BY id').all() as { h: string; at: number; by: string }[]).map(
              (r) => ({ identifiersHash: JSON.parse(r.h) as string[], erasedAt: r.at, erasedBy: r.by }),
            )
          : [];
        const countsMs = lap();
        const hash = task.hash === false ? '' : plaintextImageHash(task.path, Buffer.from(task.key, 'hex'), pageSize, task.bytes);
        return { integrity, schemaVersion, contentHash: hash, rowCounts: counts, ledger, ms: { integrity: integrityMs, counts: countsMs, hash: lap() } } satisfies Inspection;
      } finally {
        db.close();
      }
    }
    case 'extract': {
      copyFileSync(task.backupPath, task.outPath);
      truncateSync(task.outPath, task.snapshotBytes);
      rekey(task.outPath, task.backupKey, task.databaseKey);
      return null;
    }
  }
}

export type WorkerRequest = { id: number; task: WorkerTask };
/** `coded`: a `CodedError` of our own (its words are meant for the admin), else SQLite's or Node's. */
export type WorkerReply = { id: number } & ({ ok: true; value: unknown } | { ok: false; code: string | null; message: string; coded?: boolean });

parentPort!.on('message', ({ id, task }: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { id, ok: true, value: run(task) };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    if (err instanceof CodedError) reply = { id, ok: false, code: err.code, message: err.message, coded: true };
    else reply = { id, ok: false, code: typeof e.code === 'string' ? e.code : null, message: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(reply);
});
