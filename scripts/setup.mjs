#!/usr/bin/env node
// Runs before `npm start`, `npm test` and `npm run demo` (npm's pre-scripts), so that on a fresh
// machine the README's commands do all the set-up: the Debian packages the native modules, the
// keychain and the browser tests need, then `npm ci` when node_modules is missing or stale.
// Fast (a few stat calls) when everything is already there.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const mode = process.argv[2] ?? 'test'; // start | test | demo
const debianPackages = ['libsecret-1-dev', 'libssl-dev', 'openssl', 'gnome-keyring', 'dbus', 'libsecret-tools', ...(mode === 'start' ? [] : ['chromium', 'fonts-noto-color-emoji']), ...(mode === 'test' ? ['prometheus', 'postgresql', 'poppler-utils', 'librsvg2-bin'] : [])];

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (process.platform === 'linux' && existsSync('/usr/bin/dpkg-query')) {
  const missing = debianPackages.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return !(r.stdout ?? '').includes('install ok installed');
  });
  if (missing.length > 0) {
    const isRoot = process.getuid?.() === 0;
    if (!isRoot) {
      console.error(`Clinic Inbox needs these Debian packages first:\n  sudo apt-get install -y ${missing.join(' ')}`);
      process.exit(1);
    }
    console.log(`installing Debian packages: ${missing.join(' ')}`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...missing], { DEBIAN_FRONTEND: 'noninteractive' });
  }
}

const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('installing npm dependencies (npm ci; native modules build from source, a few minutes)');
  run('node', [join(root, 'scripts', 'lock-platforms.mjs')]);
  // Where Electron cannot run (tests, the browser demo) its binary is not needed.
  run('npm', ['ci', '--no-audit', '--no-fund'], mode === 'start' ? {} : { ELECTRON_SKIP_BINARY_DOWNLOAD: '1' });
}
