// Compiles the relay to plain JavaScript in dist/relay/ (main.js and the queue writer thread's
// queueWriterWorker.js), so it runs without the TypeScript loader: tsx costs ~33 MB resident per
// process (its loader hooks run in an isolate of their own). Packages stay external (node_modules).
// Code only one store needs is split into chunks loaded on first use: a relay on SQLite never
// loads `pg` (~4 MB resident).
//   node relay/build.mjs && MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 dist/relay/main.js serve
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, 'main.ts'), join(here, 'queueWriterWorker.ts')],
  outdir: join(here, '..', 'dist', 'relay'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  splitting: true,
  logLevel: 'warning',
});
