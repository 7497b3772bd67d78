// One stretch of the audit chain walked on a read connection of its own, in a worker thread: the
// SQLCipher page decryption and the hashing run here, several stretches at once, and the core's
// event loop keeps answering every window meanwhile. It loads only the cipher and the chain walk,
// not `openDatabase` (the migrations, the whole schema): the core's own connection opened and
// migrated this file already, and a worker's start-up is paid on every verification.
import Sqlite from 'better-sqlite3-multiple-ciphers';
import { parentPort, workerData } from 'node:worker_threads';
import { applyCipherKey } from '../db/cipher';
import { walkChainRange, type ChainRange, type RangeWalk } from './chain';

export interface ChainTask extends ChainRange {
  path: string;
  /** The database key, hex (a worker gets no keychain). */
  key: string;
}

export type ChainReply = { ok: true; walk: RangeWalk } | { ok: false; code: string };

function run(task: ChainTask): ChainReply {
  let db: Sqlite.Database | null = null;
  try {
    db = new Sqlite(task.path, { readonly: true, fileMustExist: true });
    applyCipherKey(db, Buffer.from(task.key, 'hex'));
    db.pragma('busy_timeout = 5000');
    return { ok: true, walk: walkChainRange(db, task) };
  } catch (err) {
    // SQLite's code names no row contents; the message might. A wrong key reads as SQLITE_NOTADB.
    return { ok: false, code: (err as { code?: string }).code ?? 'error' };
  } finally {
    db?.close();
  }
}

if (parentPort) parentPort.postMessage(run(workerData as ChainTask));
