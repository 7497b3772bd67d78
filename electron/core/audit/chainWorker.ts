// One stretch of the audit chain walked on a read connection of its own, in a worker thread: the
// SQLCipher page decryption and the hashing run here, several stretches at once, and the core's
// event loop keeps answering every window meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from '../db/open';
import { walkChainRange, type ChainRange, type RangeWalk } from './auditLog';

export interface ChainTask extends ChainRange {
  path: string;
  /** The database key, hex (a worker gets no keychain). */
  key: string;
}

export type ChainReply = { ok: true; walk: RangeWalk } | { ok: false; code: string };

function run(task: ChainTask): ChainReply {
  const { db } = openDatabase({ path: task.path, key: Buffer.from(task.key, 'hex'), readonly: true });
  try {
    return { ok: true, walk: walkChainRange(db, task) };
  } catch (err) {
    // SQLite's code names no row contents; the message might.
    return { ok: false, code: (err as { code?: string }).code ?? 'error' };
  } finally {
    db.close();
  }
}

if (parentPort) parentPort.postMessage(run(workerData as ChainTask));
