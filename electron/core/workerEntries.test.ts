import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/**
 * A worker thread the core starts must exist in the packaged app: the bundle puts every entry of
 * `electron.vite.config.ts` beside `coreProcess.js`, and `startWorkerThread` loads `./<name>.js`
 * there. A worker started but not listed as an entry would work in every test (they run the
 * sources) and fail only in the shipped app, so the two lists are compared here.
 */
describe('worker threads in the packaged build', () => {
  const started = sources(join(root, 'electron', 'core')).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/startWorkerThread\(import\.meta\.url, '\.\/([A-Za-z]+)'/g)].map((m) => ({
      file: relative(root, file),
      name: m[1]!,
      source: relative(root, join(file, '..', `${m[1]}.ts`)),
    })),
  );
  const config = readFileSync(join(root, 'electron.vite.config.ts'), 'utf8');
  const entries = new Map([...config.matchAll(/(\w+): resolve\('([^']+)'\)/g)].map((m) => [m[1]!, m[2]!]));

  it('finds the workers the core starts', () => {
    expect(started.map((s) => s.name).sort()).toEqual(['backupWorker', 'chainWorker', 'erasureWorker', 'eventsWorker', 'mediaWriter']);
  });

  it('lists each as a build entry of the same name, pointing at the file it starts', () => {
    for (const s of started) expect({ worker: s.name, entry: entries.get(s.name) }).toEqual({ worker: s.name, entry: s.source });
  });
});
