// The backup's heavy work, in a worker thread so the core's event loop (the inbox, the relay link)
// stays free while a 1 GB database is snapshotted, checked and hashed. One task per worker.
import { closeSync, copyFileSync, fsyncSync, openSync, truncateSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import { applyCipherKey } from '../db/open';
import type { Database } from '../db/types';
import { contentHash } from './format';

export type WorkerTask =
  /** `VACUUM INTO` the live database (a consistent read), then rekey the copy to the backup key. */
  | { kind: 'snapshot'; livePath: string; databaseKey: string; outPath: string; backupKey: string }
  /** Open read-only, `integrity_check`, row counts, content hash, schema version, the erasure ledger. */
  | { kind: 'inspect'; path: string; key: string }
  /** The snapshot part of a backup file into a new database file, rekeyed to the database key. */
  | { kind: 'extract'; backupPath: string; snapshotBytes: number; backupKey: string; outPath: string; databaseKey: string };

export interface Inspection {
  integrity: string;
  schemaVersion: number;
  contentHash: string;
  rowCounts: Record<string, number>;
  ledger: { identifiersHash: string[]; erasedAt: number; erasedBy: string }[];
}

const keyed = (path: string, hex: string, readonly: boolean): Database => {
  const db = new Sqlite(path, { readonly, fileMustExist: true }) as unknown as Database;
  try {
    applyCipherKey(db, Buffer.from(hex, 'hex'));
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
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
    db.pragma(`rekey = "x'${to}'"`);
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  fsyncFile(path);
}

function run(task: WorkerTask): unknown {
  switch (task.kind) {
    case 'snapshot': {
      const src = keyed(task.livePath, task.databaseKey, true);
      try {
        // SQLite3 Multiple Ciphers writes the copy encrypted with the source's key.
        src.exec(`VACUUM INTO '${task.outPath.replace(/'/g, "''")}'`);
      } finally {
        src.close();
      }
      rekey(task.outPath, task.databaseKey, task.backupKey);
      return null;
    }
    case 'inspect': {
      const db = keyed(task.path, task.key, true);
      try {
        const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
        const schemaVersion = db.pragma('user_version', { simple: true }) as number;
        const { hash, rowCounts } = contentHash(db);
        const hasLedger = db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'erasure_ledger'`).get() !== undefined;
        const ledger = hasLedger
          ? (db.prepare('SELECT identifiers_hash AS h, erased_at AS at, erased_by AS by FROM erasure_ledger ORDER BY id').all() as { h: string; at: number; by: string }[]).map(
              (r) => ({ identifiersHash: JSON.parse(r.h) as string[], erasedAt: r.at, erasedBy: r.by }),
            )
          : [];
        return { integrity, schemaVersion, contentHash: hash, rowCounts, ledger } satisfies Inspection;
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

try {
  parentPort!.postMessage({ ok: true, value: run(workerData as WorkerTask) });
} catch (err) {
  const e = err as { code?: unknown; message?: unknown };
  parentPort!.postMessage({ ok: false, code: typeof e.code === 'string' ? e.code : null, message: err instanceof Error ? err.message : String(err) });
}
