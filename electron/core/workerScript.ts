import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { WorkerOptions } from 'node:worker_threads';

/**
 * What `new Worker(...)` takes to run a module of the core beside this one (`base` without its
 * extension): the built `.js`, or the `.ts` source through tsx's loader when the core itself runs
 * from source (tests, benchmarks, the demo).
 */
export function workerScript(base: URL, options: WorkerOptions = {}): [string | URL, WorkerOptions] {
  const fromSource = import.meta.url.endsWith('.ts');
  const target = new URL(`${base.href}${fromSource ? '.ts' : '.js'}`);
  if (!fromSource) return [target, options];
  const api = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(target.href)}); });`;
  return [boot, { ...options, eval: true }];
}
