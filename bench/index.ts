// Runs every benchmark file (`bench/*.bench.ts`) in its own process, one after another, so each
// measures on a quiet machine and a crash in one does not hide the others.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
let failures = 0;
for (const file of files) {
  process.stdout.write(`\n### ${file}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, file)], { stdio: 'inherit' });
  if (r.status !== 0) failures += 1;
}
if (files.length === 0) process.stdout.write('no benchmarks found\n');
process.exit(failures === 0 ? 0 : 1);
