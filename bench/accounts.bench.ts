// Sign-in cost with the product's argon2id parameters (ARGON2_PARAMS): one hash must take
// 250–1,000 ms here — dear for someone guessing against a stolen database, no wait at the desk.
// Measured as wall time and as CPU time (the machine is shared: CPU time is what the parameters
// cost and what the target judges, wall time what a person waits), each against a bare baseline in the same run: one SHA-256
// of the same password, and a `session.whoami` through the same connection as the sign-ins.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ARGON2_PARAMS, hashSecret } from '../electron/core/accounts/passwords';
import { createCore } from '../electron/core/createCore';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { TEST_PASSWORD, rpc } from '../electron/core/testing/users';

const N = Number(process.env['BENCH_ACCOUNTS_SIGNINS'] ?? 15);
const BARE_N = 500;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
async function timed(n: number, fn: () => unknown): Promise<{ wall: number[]; cpuMs: number }> {
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: wall.sort((a, b) => a - b), cpuMs: (cpu.user + cpu.system) / 1000 / n };
}

const dir = mkdtempSync(join(tmpdir(), 'clinic-bench-accounts-'));
const secrets = await createKeytarSecretStore();
const core = await createCore({ dataDir: dir, secrets, logger: pino({ level: 'silent' }), graph: { baseUrl: 'http://127.0.0.1:9' } });
try {
  const sha = await timed(BARE_N, () => createHash('sha256').update(TEST_PASSWORD).digest());
  await hashSecret(TEST_PASSWORD); // warm-up: the argon2 worker and its first 64 MiB
  const hash = await timed(N, () => hashSecret(TEST_PASSWORD));

  const desk = core.connect('bench');
  await rpc(desk, 'auth.createFirstAdmin', { displayName: 'Bench Admin', username: 'bench-admin', password: TEST_PASSWORD });
  const whoami = await timed(BARE_N, () => rpc(desk, 'session.whoami'));
  const signIn = await timed(N, async () => {
    const r = await rpc(desk, 'auth.signIn', { username: 'bench-admin', password: TEST_PASSWORD });
    if (r.status !== 'signed_in') throw new Error('sign-in did not complete');
  });

  const rows: [string, { wall: number[]; cpuMs: number }][] = [
    ['bare SHA-256 of the password', sha],
    [`argon2id hashSecret (m=${ARGON2_PARAMS.memoryCost / 1024} MiB, t=${ARGON2_PARAMS.timeCost})`, hash],
    ['bare session.whoami (same connection)', whoami],
    ['auth.signIn (verify + session + audit)', signIn],
  ];
  process.stdout.write(`accounts, ${N} hashes and sign-ins, ${BARE_N} bare calls each\n`);
  process.stdout.write(`${'case'.padEnd(46)}${'p50 ms'.padStart(10)}${'p95 ms'.padStart(10)}${'cpu ms'.padStart(10)}\n`);
  for (const [name, r] of rows) {
    process.stdout.write(`${name.padEnd(46)}${[pct(r.wall, 50), pct(r.wall, 95), r.cpuMs].map((v) => v.toFixed(3).padStart(10)).join('')}\n`);
  }
  const extra = pct(signIn.wall, 50) - pct(whoami.wall, 50);
  process.stdout.write(`sign-in over a bare call: +${extra.toFixed(0)} ms (p50); hash over bare SHA-256: x${(pct(hash.wall, 50) / pct(sha.wall, 50)).toFixed(0)}\n`);
  // Judged on CPU time: on a quiet desk PC wall time is the CPU time (one hash at a time, one
  // thread); on this shared machine wall time also holds other people's work (see the load).
  const p50 = pct(hash.wall, 50);
  const ok = hash.cpuMs >= 250 && hash.cpuMs <= 1000;
  process.stdout.write(
    `target (one argon2id hash costs 250–1,000 ms): ${ok ? 'met' : 'MISSED'} (cpu ${hash.cpuMs.toFixed(0)} ms per hash; wall p50 ${p50.toFixed(0)} ms at load ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores)\n`,
  );
  process.exitCode = ok ? 0 : 1;
} finally {
  await core.close();
  for (const account of Object.values(keychainAccounts(core.installationId))) await secrets.delete(account).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
