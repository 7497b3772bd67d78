import { availableParallelism } from 'node:os';
import { CodedError } from '../../../shared/errors';
import type { Database } from '../db/types';
import { startWorkerThread } from '../workerThread';
import { chainStartOf, checkAnchorRecord, readAnchor } from './anchor';
import { chainHeadSeq } from './auditLog';
import { stitchChain, walkChainRange, type ChainRange, type ChainVerdict, type RangeWalk } from './chain';
import type { ChainReply, ChainTask } from './chainWorker';

/** Below this many entries the chain is walked inline: a few workers' start-up would cost more than the walk. */
export const INLINE_BELOW = 20_000;
const MAX_WORKERS = 4;

export interface VerifyChainDeps {
  /** The core's connection: reads the head the workers verify up to (and walks small logs). */
  db: Database;
  /** The database file and its key, handed to each worker in memory. */
  database: { path: string; key: Buffer };
}

export interface VerifyChainOptions {
  /** How many workers (default: the cores available, 1 to 4). */
  workers?: number;
  /** Walk inline below this many entries (default `INLINE_BELOW`). */
  inlineBelow?: number;
}

/** Splits from..head (from 1 unless pruned) into `n` contiguous ranges of near-equal length. */
export function splitChain(head: number, n: number, from = 1): ChainRange[] {
  const length = head - from + 1;
  const count = Math.max(1, Math.min(n, length));
  return Array.from({ length: count }, (_, k) => ({ from: from + Math.floor((length * k) / count), to: from - 1 + Math.floor((length * (k + 1)) / count) }));
}

function walkInWorker(task: ChainTask): Promise<RangeWalk> {
  return new Promise((resolve, reject) => {
    const w = startWorkerThread(import.meta.url, './chainWorker', { workerData: task });
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      reject(new CodedError('INTERNAL', `The audit chain could not be read (${why}); nothing was decided.`));
    };
    w.once('message', (reply: ChainReply) => {
      if (reply.ok) {
        settled = true;
        resolve(reply.walk);
      } else fail(reply.code);
      void w.terminate();
    });
    w.once('error', (err) => fail(err.name));
    w.once('exit', (code) => fail(`worker stopped, ${code}`));
  });
}

/**
 * Verifies the whole chain as `verifyAuditChain` does, same verdict and same first broken entry,
 * in worker threads over contiguous seq ranges, so the core's thread stays free. The head is read
 * first and is the end of the last range: entries are only ever appended, so what each worker's
 * own read snapshot holds up to that seq is the same, and entries appended meanwhile wait for the
 * next verification. Each worker checks its range's links; `stitchChain` checks the joins.
 */
export async function verifyChain(deps: VerifyChainDeps, options: VerifyChainOptions = {}): Promise<ChainVerdict> {
  const { db } = deps;
  const { anchor, head } = db.transaction(() => ({ anchor: readAnchor(db), head: chainHeadSeq(db) }))();
  const start = chainStartOf(anchor);
  if (head === null) return stitchChain([]);
  if (head - start.from + 1 < (options.inlineBelow ?? INLINE_BELOW)) return checkAnchorRecord(db, anchor, stitchChain([walkChainRange(db, { from: start.from, to: head })], start));
  const workers = Math.max(1, Math.min(MAX_WORKERS, options.workers ?? availableParallelism()));
  const key = deps.database.key.toString('hex');
  const walks = await Promise.all(splitChain(head, workers, start.from).map((range) => walkInWorker({ ...range, path: deps.database.path, key })));
  const verdict = checkAnchorRecord(db, anchor, stitchChain(walks, start));
  // A pruning that moved the anchor while the workers walked removed entries they expected: the
  // verdict is of a chain that no longer exists, so the chain is walked again from the new anchor.
  if (!verdict.ok && readAnchor(db)?.throughSeq !== anchor?.throughSeq) return verifyChain(deps, options);
  return verdict;
}
