import { CodedError, type ErrorCode } from '../../../shared/errors';
import { startWorkerThread } from '../workerThread';
import type { ErasureReply, ErasureTask } from './erasureWorker';

export type ErasureDone = Extract<ErasureReply, { ok: true }>;

/**
 * Erases one contact in a worker thread of its own (started for it, gone after: erasures are rare)
 * and resolves once the rows are gone, the search index purged and the WAL checkpointed. Refusals
 * (NOT_FOUND, LEGAL_HOLD) come back as the same coded errors.
 */
export function eraseInWorker(task: ErasureTask): Promise<ErasureDone> {
  return new Promise((resolve, reject) => {
    const w = startWorkerThread(import.meta.url, './erasureWorker', { workerData: task });
    let settled = false;
    w.once('message', (reply: ErasureReply) => {
      settled = true;
      if (reply.ok) resolve(reply);
      else reject(new CodedError(reply.code as ErrorCode, reply.message));
      void w.terminate();
    });
    w.once('error', (err) => {
      if (!settled) reject(new CodedError('INTERNAL', `The erasure worker failed (${err.name}); nothing was erased.`));
    });
    w.once('exit', (code) => {
      if (!settled) reject(new CodedError('INTERNAL', `The erasure worker stopped (${code}).`));
    });
  });
}
