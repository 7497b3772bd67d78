import type { Worker } from 'node:worker_threads';
import { CodedError } from '../../../shared/errors';
import { startWorkerThread } from '../workerThread';
import type { Inspection, WorkerReply, WorkerTask } from './worker';

/** How long the worker stays up after its last task (a backup's tasks follow each other closely). */
const IDLE_MS = 30_000;

let worker: Worker | null = null;
let nextId = 1;
let idle: NodeJS.Timeout | null = null;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

/** `worker.ts`, through tsx when the core runs from source. One per process, reused. */
function spawn(): Worker {
  const w = startWorkerThread(import.meta.url, './worker');
  const fail = (err: unknown) => {
    if (worker === w) worker = null;
    for (const [, p] of waiting) p.reject(err);
    waiting.clear();
  };
  w.on('message', (m: WorkerReply) => {
    const p = waiting.get(m.id);
    if (!p) return;
    waiting.delete(m.id);
    if (m.ok) p.resolve(m.value);
    // SQLite's messages name files and pages, never row contents.
    else p.reject(new CodedError(m.code === 'SQLITE_FULL' ? 'UNAVAILABLE' : 'VALIDATION_FAILED', m.code === 'SQLITE_FULL' ? 'The backup folder is full.' : `The database could not be read (${m.code ?? 'error'}).`));
    if (waiting.size === 0) scheduleIdle(w);
  });
  w.on('error', fail);
  w.on('exit', (code) => fail(new CodedError('INTERNAL', `The backup worker stopped (${code}).`)));
  return w;
}

function scheduleIdle(w: Worker): void {
  if (idle) clearTimeout(idle);
  w.unref();
  idle = setTimeout(() => {
    if (worker === w && waiting.size === 0) {
      worker = null;
      void w.terminate();
    }
  }, IDLE_MS);
  idle.unref();
}

/** Runs one task in the backup worker (started on first use, stopped after a while idle). */
export function runWorker(task: Extract<WorkerTask, { kind: 'inspect' }>): Promise<Inspection>;
export function runWorker(task: WorkerTask): Promise<null>;
export function runWorker(task: WorkerTask): Promise<unknown> {
  if (idle) clearTimeout(idle);
  worker ??= spawn();
  worker.ref();
  const id = nextId++;
  const w = worker;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    w.postMessage({ id, task });
  });
}

/** Stops the worker now (the core closing). */
export async function stopWorker(): Promise<void> {
  if (idle) clearTimeout(idle);
  const w = worker;
  worker = null;
  if (w && waiting.size === 0) await w.terminate();
}
