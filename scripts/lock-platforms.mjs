#!/usr/bin/env node
// The npm registry reachable from our build machines serves only the linux-x64 builds of
// packages that ship one native binary per platform (rollup, unrs-resolver, …). A lock file made
// here therefore lacks the other platforms' optional entries, and `npm ci` refuses such a lock as
// "out of sync". This adds each missing entry — version from its parent's optionalDependencies,
// os/cpu/libc from its name — marked optional, so npm ci accepts the lock and skips them as
// foreign platforms, exactly as it would with a lock made elsewhere. Idempotent; run by .ci/run
// and the pre-scripts before `npm ci`. `--check` only reports.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const lockPath = join(import.meta.dirname, '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const packages = lock.packages;

const OS = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32', 'sunos', 'aix', 'netbsd'];
const CPU = { arm64: 'arm64', x64: 'x64', ia32: 'ia32', arm: 'arm', loong64: 'loong64', ppc64: 'ppc64', riscv64: 'riscv64', s390x: 's390x', wasm32: 'wasm32' };

/** Platform fields from a name like `@rollup/rollup-linux-arm64-musl` or `…-win32-x64-msvc`. */
function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.map((p) => CPU[p]).find(Boolean);
  if (!os || !cpu) return null;
  const libc = parts.some((p) => p.startsWith('musl')) ? 'musl' : os === 'linux' && parts.some((p) => p.startsWith('gnu')) ? 'glibc' : null;
  return { os, cpu, libc };
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path === '' ? 'node_modules' : `${path}/node_modules`;
    // npm resolves a dependency in the nearest node_modules up the tree; hoisted entries count.
    const candidates = [`${base}/${dep}`, `node_modules/${dep}`];
    if (candidates.some((c) => packages[c])) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    packages[`node_modules/${dep}`] = {
      version,
      cpu: [platform.cpu],
      dev: entry.dev === true ? true : undefined,
      ...(platform.libc ? { libc: [platform.libc] } : {}),
      optional: true,
      os: [platform.os],
    };
    added += 1;
  }
}

if (process.argv.includes('--check')) {
  console.log(added === 0 ? 'package-lock.json has every platform entry' : `package-lock.json lacks ${added} platform entries`);
  process.exit(added === 0 ? 0 : 1);
}
if (added > 0) {
  const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
  lock.packages = sorted;
  writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`package-lock.json: added ${added} foreign-platform optional entries`);
}
