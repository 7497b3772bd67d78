import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CodedError } from '../../../shared/errors';
import type { Inspection, WorkerTask } from './worker';

/** Starts `worker.ts` (through tsx when the core runs from source) with one task and waits for its answer. */
export function runWorker(task: Extract<WorkerTask, { kind: 'inspect' }>): Promise<Inspection>;
export function runWorker(task: WorkerTask): Promise<null>;
export function runWorker(task: WorkerTask): Promise<unknown> {
  const fromSource = import.meta.url.endsWith('.ts');
  const target = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
  let worker: Worker;
  if (fromSource) {
    const api = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
    const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(target.href)}); });`;
    worker = new Worker(boot, { eval: true, workerData: task });
  } else {
    worker = new Worker(target, { workerData: task });
  }
  return new Promise((resolve, reject) => {
    let answered = false;
    worker.once('message', (m: { ok: true; value: unknown } | { ok: false; code: string | null; message: string }) => {
      answered = true;
      if (m.ok) resolve(m.value);
      // SQLite's messages name files and pages, never row contents.
      else reject(new CodedError(m.code === 'SQLITE_FULL' ? 'UNAVAILABLE' : 'VALIDATION_FAILED', m.code === 'SQLITE_FULL' ? 'The backup folder is full.' : `The database could not be read (${m.code ?? 'error'}).`));
    });
    worker.once('error', (err) => {
      answered = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!answered) reject(new CodedError('INTERNAL', `The backup worker stopped (${code}).`));
    });
  });
}
