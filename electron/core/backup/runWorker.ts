import type { Worker } from 'node:worker_threads';
import { CodedError, type ErrorCode } from '../../../shared/errors';
import { startWorkerThread } from '../workerThread';
import type { Inspection, WorkerReply, WorkerTask } from './backupWorker';

/** How long a worker stays up after its last task (a backup's tasks follow each other closely). */
const IDLE_MS = 30_000;

/**
 * Two lanes, one worker thread each, reused: a backup's verification runs `integrity_check` in
 * lane 0 while lane 1 hashes the snapshot and counts its rows, so a two-core desk PC verifies in
 * the time of the longer of the two rather than their sum.
 */
export type Lane = 0 | 1;

interface LaneState {
  worker: Worker | null;
  idle: NodeJS.Timeout | null;
  waiting: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>;
}

const lanes: [LaneState, LaneState] = [
  { worker: null, idle: null, waiting: new Map() },
  { worker: null, idle: null, waiting: new Map() },
];
let nextId = 1;

/** `backupWorker.ts`, through tsx when the core runs from source. */
function spawn(lane: LaneState): Worker {
  const w = startWorkerThread(import.meta.url, './backupWorker');
  const fail = (err: unknown) => {
    if (lane.worker === w) lane.worker = null;
    for (const [, p] of lane.waiting) p.reject(err);
    lane.waiting.clear();
  };
  w.on('message', (m: WorkerReply) => {
    const p = lane.waiting.get(m.id);
    if (!p) return;
    lane.waiting.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else if (m.coded) p.reject(new CodedError(m.code as ErrorCode, m.message));
    // SQLite's messages name files and pages, never row contents.
    else p.reject(new CodedError(m.code === 'SQLITE_FULL' ? 'UNAVAILABLE' : 'VALIDATION_FAILED', m.code === 'SQLITE_FULL' ? 'The backup folder is full.' : `The database could not be read (${m.code ?? 'error'}).`));
    if (lane.waiting.size === 0) scheduleIdle(lane, w);
  });
  w.on('error', fail);
  w.on('exit', (code) => fail(new CodedError('INTERNAL', `The backup worker stopped (${code}).`)));
  return w;
}

function scheduleIdle(lane: LaneState, w: Worker): void {
  if (lane.idle) clearTimeout(lane.idle);
  w.unref();
  lane.idle = setTimeout(() => {
    if (lane.worker === w && lane.waiting.size === 0) {
      lane.worker = null;
      void w.terminate();
    }
  }, IDLE_MS);
  lane.idle.unref();
}

/** Runs one task in a backup worker (started on first use, stopped after a while idle). */
export function runWorker(task: Extract<WorkerTask, { kind: 'inspect' }>, lane?: Lane): Promise<Inspection>;
export function runWorker(task: Extract<WorkerTask, { kind: 'snapshot' }>, lane?: Lane): Promise<{ vacuumMs: number; fsyncMs: number; inlinedFiles: number }>;
export function runWorker(task: WorkerTask, lane?: Lane): Promise<null>;
export function runWorker(task: WorkerTask, laneNo: Lane = 0): Promise<unknown> {
  const lane = lanes[laneNo];
  if (lane.idle) clearTimeout(lane.idle);
  lane.worker ??= spawn(lane);
  const w = lane.worker;
  w.ref();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    lane.waiting.set(id, { resolve, reject });
    w.postMessage({ id, task });
  });
}

/** Stops the workers now (the core closing). */
export async function stopWorker(): Promise<void> {
  await Promise.all(
    lanes.map(async (lane) => {
      if (lane.idle) clearTimeout(lane.idle);
      const w = lane.worker;
      lane.worker = null;
      if (w && lane.waiting.size === 0) await w.terminate();
    }),
  );
}

/**
 * The full check of a snapshot, on both lanes at once: `integrity_check` in one worker; the
 * plaintext hash, row counts, schema version and erasure ledger in the other.
 */
export async function inspectSnapshot(task: { path: string; key: string; bytes?: number }): Promise<Inspection> {
  const [checked, content] = await Promise.all([
    runWorker({ kind: 'inspect', ...task, hash: false, counts: false }, 0),
    runWorker({ kind: 'inspect', ...task, integrity: false }, 1),
  ]);
  return { ...content, integrity: checked.integrity, ms: { ...content.ms, integrity: checked.ms.integrity } };
}
