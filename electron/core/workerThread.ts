import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on `file` (a sibling module named without extension): the `.ts` source
 * through tsx when the core runs from source, the built `.js` beside the bundle otherwise.
 */
export function startWorkerThread(base: string, file: string, options: Pick<WorkerOptions, 'workerData'> = {}): Worker {
  const fromSource = base.endsWith('.ts');
  const target = new URL(`${file}${fromSource ? '.ts' : '.js'}`, base);
  if (!fromSource) return new Worker(target, options);
  const api = pathToFileURL(createRequire(base).resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(target.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
