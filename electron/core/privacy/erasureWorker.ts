// One erasure on a connection of its own, in a worker thread: the transaction (thousands of rows
// and the merge of the search-index shards that held them) and the checkpoint run here, so the
// core's event loop keeps answering every window's inbox from its own connection (WAL readers
// never wait for this writer).
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CodedError } from '../../../shared/errors';
import { openDatabase } from '../db/open';
import { unlinkDiscardedMediaFiles } from '../db/repo/media';
import { checkpointAfterErasure, eraseContact, type ErasureCheckpoint, type LedgerEntry } from './erasure';

export interface ErasureTask {
  path: string;
  /** The database key, hex (a worker gets no keychain). */
  key: string;
  contactId: number;
  erasedBy: string;
  now: number;
}

export type ErasureReply =
  | { ok: true; entry: LedgerEntry; transactionMs: number; checkpointMs: number; totalMs: number; cpuMs: number | null; checkpoint: ErasureCheckpoint }
  | { ok: false; code: string; message: string };

/**
 * The page cache of this connection: the transaction reads and rewrites a shard of the search
 * index besides the patient's rows, and each page it finds cached is one SQLCipher decryption
 * fewer (measured: 'optimize' of the whole index on the 1,000,000-message clinic 1.2 s with the
 * default 16 MB, 0.8 s with the index cached).
 */
const CACHE_KIB = 131_072;

/**
 * This thread's CPU time (ms, 10 ms resolution) where Linux tells it, else null: on a loaded
 * machine the wall clock also counts the time spent waiting for a core, and `process.cpuUsage`
 * would add the main thread's.
 */
function threadCpuMs(): number | null {
  try {
    // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so count after it.
    const fields = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

function run(task: ErasureTask): ErasureReply {
  const key = Buffer.from(task.key, 'hex');
  const { db } = openDatabase({ path: task.path, key, migrate: false });
  try {
    db.pragma(`cache_size = -${CACHE_KIB}`);
    // The commit must not run the automatic checkpoint inside it: `checkpointAfterErasure` copies
    // the same pages once, right after, and truncates the WAL.
    db.pragma('wal_autocheckpoint = 0');
    const t0 = performance.now();
    const cpu0 = threadCpuMs();
    const entry = db.transaction(() => eraseContact(db, { contactId: task.contactId, erasedBy: task.erasedBy, now: task.now, databaseKey: key })).immediate();
    const transactionMs = performance.now() - t0;
    // The patient's files, whose keys the commit deleted; before the checkpoint, which then also
    // copies the emptied list of their names.
    unlinkDiscardedMediaFiles(db);
    const checkpoint = checkpointAfterErasure(db);
    const totalMs = performance.now() - t0;
    const cpu1 = threadCpuMs();
    return { ok: true, entry, transactionMs, checkpointMs: totalMs - transactionMs, totalMs, cpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, checkpoint };
  } catch (err) {
    // Coded errors (NOT_FOUND, LEGAL_HOLD) carry their own words; SQLite's name no row contents.
    if (err instanceof CodedError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'INTERNAL', message: `The erasure failed (${(err as { code?: string }).code ?? 'error'}); nothing was erased.` };
  } finally {
    db.close();
  }
}

if (parentPort) {
  const port = parentPort;
  port.postMessage(run(workerData as ErasureTask));
}
