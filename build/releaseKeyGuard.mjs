// electron-builder's beforePack hook: no installer is built while the app pins no usable release
// key (it would never accept an update). The check itself is `npm run release -- check-key`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

export default async function releaseKeyGuard() {
  try {
    execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'release.ts'), 'check-key'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (err) {
    const why = err && typeof err === 'object' && 'stderr' in err && err.stderr ? String(err.stderr).trim() : String(err);
    throw new Error(`Packaging refused. ${why}`);
  }
}
