#!/usr/bin/env node
// Every suite of the project, in order: typecheck, lint, the Electron build, then vitest (unit,
// integration, fault and browser tests) inside a private D-Bus session with an unlocked
// gnome-keyring, so the core meets a real OS keychain. Prints one closing line
// `N passed, N failed` that sums all of them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const only = args.includes('--vitest-only');
const vitestArgs = args.filter((a) => a !== '--vitest-only');
let passed = 0;
let failed = 0;

function step(name, cmd, cmdArgs) {
  process.stdout.write(`\n=== ${name}\n`);
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' } });
  if (r.status === 0) passed += 1;
  else {
    failed += 1;
    process.stdout.write(`--- ${name} FAILED (exit ${r.status ?? r.signal})\n`);
  }
}

if (!only) {
  step('typecheck', 'npm', ['run', '--silent', 'typecheck']);
  step('lint', 'npm', ['run', '--silent', 'lint']);
  step('electron-vite build', 'npx', ['electron-vite', 'build']);
}

const work = mkdtempSync(join(tmpdir(), 'clinic-inbox-test-'));
const report = join(work, 'vitest.json');
process.stdout.write('\n=== vitest (inside dbus-run-session with gnome-keyring)\n');
const r = spawnSync(
  'sh',
  [join(import.meta.dirname, 'with-keyring.sh'), 'npx', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...vitestArgs],
  { stdio: 'inherit' },
);
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests;
  failed += json.numFailedTests;
  // A suite that failed to load has no tests to count; count it as one failure.
  failed += json.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
} else {
  failed += 1;
  process.stdout.write(`--- vitest produced no report (exit ${r.status ?? r.signal})\n`);
}
rmSync(work, { recursive: true, force: true });
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 && r.status === 0 ? 0 : 1);
