import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Licence {
  name: string;
  version: string;
  license: string;
}

interface PackageJson {
  name?: string;
  version?: string;
  license?: string;
  dependencies?: Record<string, string>;
}

function readJson(file: string): PackageJson | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch {
    return null;
  }
}

/** The app's own folder (where its package.json is), from the source tree or the built bundle. */
export function findAppRoot(from: string = import.meta.dirname): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (readJson(join(dir, 'package.json'))?.name === 'clinic-inbox') return dir;
    if (dirname(dir) === dir) return null;
  }
}

let cached: { version: string; licences: Licence[] } | null = null;

/** The app's version and the licence of each bundled (production) package, read once. */
export function aboutApp(): { version: string; licences: Licence[] } {
  if (cached) return cached;
  const root = findAppRoot();
  const pkg = root ? readJson(join(root, 'package.json')) : null;
  const licences: Licence[] = [];
  for (const name of Object.keys(pkg?.dependencies ?? {}).sort()) {
    const file = join(root!, 'node_modules', name, 'package.json');
    const dep = existsSync(file) ? readJson(file) : null;
    licences.push({ name, version: dep?.version ?? 'unknown', license: typeof dep?.license === 'string' ? dep.license : 'see package' });
  }
  cached = { version: pkg?.version ?? '0.0.0', licences };
  return cached;
}
