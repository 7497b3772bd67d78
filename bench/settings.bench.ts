// What reading the managed policy and checking for updates adds to a core start: target under 5 ms
// at p95. Two measures, same run, same data folder:
// 1. whole starts (createCore → close), alternating with and without a policy file plus one update
//    check (a signed manifest read from disk, signature verified, rollout bucket and version decided
//    — what the shell does after fetching it), p50/p95 of each and of the difference;
// 2. the added work alone, many times: read the managed policy as createCore does (on this OS; on
//    Linux and macOS the registry path must cost nothing: reg.exe is never run), verify the manifest,
//    decide; beside it the policy file alone, to show the registry path's share, and the Windows
//    translation of a recorded `reg query` output (reg.exe itself cannot run here; createCore starts
//    it before opening the store, so its wall time overlaps the keychain and SQLCipher work).
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createCore } from '../electron/core/createCore';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { readManagedPolicy, readPolicyFile } from '../electron/core/settings/policyFile';
import { parseRegQuery, policyFromRegistry, type RegRunner } from '../electron/core/settings/registry';
import { decideUpdate, rolloutBucket } from '../electron/main/updates/decide';
import { sha512Base64, verifyManifest } from '../electron/main/updates/manifest';
import { TEST_HASH_COST } from '../electron/core/testing/users';
import { percentiles, time } from './stats';

const STARTS = Number(process.env['BENCH_SETTINGS_STARTS'] ?? 30);
const dir = mkdtempSync(join(tmpdir(), 'clinic-bench-settings-'));
const policyPath = join(dir, 'policy.json');
writeFileSync(policyPath, JSON.stringify({ updateUrl: 'https://updates.example/ci/', updateChannel: 'stable', idleLockMinutes: 4, twoFactorRequired: false, backupFolder: '/srv/backups', sendGuardMode: 'warn', languages: ['nl', 'en'], retentionMinimumDays: 3650 }));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const der = publicKey.export({ format: 'der', type: 'spki' });
const pinned = [der.subarray(der.length - 32).toString('base64')];
const sha = sha512Base64(Buffer.alloc(1024, 7));
const manifestPath = join(dir, 'latest-linux.yml');
writeFileSync(manifestPath, `version: 9.9.9\nfiles:\n  - url: Clinic-Inbox-9.9.9.AppImage\n    sha512: ${sha}\n    size: 123456789\npath: Clinic-Inbox-9.9.9.AppImage\nsha512: ${sha}\nreleaseDate: '2026-12-01T00:00:00.000Z'\nstagingPercentage: 50\n`);
writeFileSync(`${manifestPath}.sig`, sign(null, readFileSync(manifestPath), privateKey).toString('base64'));

function updateCheck(installationId: string): boolean {
  const check = verifyManifest({ bytes: readFileSync(manifestPath), signature: readFileSync(`${manifestPath}.sig`, 'utf8'), publicKeys: pinned });
  if (!check.ok) throw new Error(check.code);
  return decideUpdate({ current: '0.1.0', manifest: check.manifest, bucket: rolloutBucket(installationId), allowedVersion: null }).offer;
}

const secrets = await createKeytarSecretStore();
const logger = pino({ level: 'silent' });
const start = async (withPolicy: boolean): Promise<{ ms: number; cpuMs: number; installationId: string }> => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const core = await createCore({ dataDir: join(dir, 'data'), secrets, logger, passwordHashCost: TEST_HASH_COST, policyPath: withPolicy ? policyPath : null, graph: { baseUrl: 'http://127.0.0.1:9' } });
  if (withPolicy) updateCheck(core.installationId);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await core.close();
  return { ms, cpuMs: (c.user + c.system) / 1000, installationId: core.installationId };
};

let installationId = '';
try {
  installationId = (await start(false)).installationId; // creates the data folder, keys and schema
  await start(true);
  const without: number[] = [];
  const withIt: number[] = [];
  const diffs: number[] = [];
  const cpuWithout: number[] = [];
  const cpuWith: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    // Alternate which goes first so drift on a shared machine falls on both.
    const [a, b] = i % 2 === 0 ? [await start(false), await start(true)] : [await start(true), await start(false)].reverse();
    without.push(a!.ms);
    withIt.push(b!.ms);
    diffs.push(b!.ms - a!.ms);
    cpuWithout.push(a!.cpuMs);
    cpuWith.push(b!.cpuMs);
  }
  let regRuns = 0;
  const countingReg: RegRunner = async () => ((regRuns += 1), { code: 1, stdout: new Uint8Array() });
  const added = async (): Promise<void> => {
    const reading = await readManagedPolicy({ filePath: policyPath, runReg: countingReg });
    if (reading.problems.length > 0) throw new Error('policy did not parse');
    updateCheck(installationId);
  };
  const alone: number[] = [];
  const aloneCpu: number[] = [];
  const fileOnly: number[] = [];
  const managed: number[] = [];
  for (let i = 0; i < 2020; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await added();
    const c = process.cpuUsage(c0);
    const t1 = performance.now();
    if (i >= 20) {
      alone.push(t1 - t0);
      aloneCpu.push((c.user + c.system) / 1000);
    }
    // The registry path's share on this OS: the managed reading against the file alone, alternating.
    const a0 = performance.now();
    readPolicyFile(policyPath);
    const a1 = performance.now();
    await readManagedPolicy({ filePath: policyPath, runReg: countingReg });
    const a2 = performance.now();
    if (i >= 20) {
      fileOnly.push(a1 - a0);
      managed.push(a2 - a1);
    }
  }
  const recorded = `\r\nHKEY_LOCAL_MACHINE\\Software\\Policies\\ClinicInbox\r\n    updateUrl    REG_SZ    https://updates.example/ci/\r\n    idleLockMinutes    REG_DWORD    0x4\r\n    twoFactorRequired    REG_DWORD    0x0\r\n    backupFolder    REG_EXPAND_SZ    %ProgramData%\\Backups\r\n    sendGuardMode    REG_SZ    warn\r\n    languages    REG_MULTI_SZ    nl\\0en\r\n    retentionMinimumDays    REG_DWORD    0xe42\r\n\r\n`;
  const windowsTranslation = time(() => {
    const reading = policyFromRegistry(parseRegQuery(recorded)!, { ProgramData: 'C:\\ProgramData' });
    if (reading.problems.length > 0) throw new Error('registry output did not parse');
  }, 2000);
  const f = (x: number) => x.toFixed(2);
  const w = percentiles(without);
  const p = percentiles(withIt);
  const d = percentiles(diffs);
  const a = percentiles(alone);
  const ac = percentiles(aloneCpu);
  const fo = percentiles(fileOnly);
  const mg = percentiles(managed);
  const wt = percentiles(windowsTranslation);
  const cw = percentiles(cpuWithout);
  const cp = percentiles(cpuWith);
  process.stdout.write(
    [
      `core start without policy/update check: p50 ${f(w.p50)} ms, p95 ${f(w.p95)} ms (n=${w.n})`,
      `core start with policy + update check:  p50 ${f(p.p50)} ms, p95 ${f(p.p95)} ms (n=${p.n})`,
      `paired difference (with − without):      p50 ${f(d.p50)} ms, p95 ${f(d.p95)} ms`,
      `core start CPU time: without p50 ${f(cw.p50)} / p95 ${f(cw.p95)} ms, with p50 ${f(cp.p50)} / p95 ${f(cp.p95)} ms`,
      `added work alone (managed policy as createCore reads it, verify manifest, decide): wall p50 ${f(a.p50)} / p95 ${f(a.p95)} ms, CPU p50 ${f(ac.p50)} / p95 ${f(ac.p95)} ms (n=${a.n})`,
      `registry path on ${process.platform}: reg.exe run ${regRuns} times; managed reading p50 ${f(mg.p50)} / p95 ${f(mg.p95)} ms against the file alone p50 ${f(fo.p50)} / p95 ${f(fo.p95)} ms`,
      `Windows translation of a recorded reg query output (parse + validate, reg.exe not run): p50 ${f(wt.p50)} / p95 ${f(wt.p95)} ms`,
      `load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${availableParallelism()} cores (wall time on a loaded machine includes waiting for a core)`,
      `target: under 5 ms added at p95 (CPU time of the added work) — ${ac.p95 < 5 ? 'met' : 'MISSED'}`,
    ].join('\n') + '\n',
  );
  if (ac.p95 >= 5 || (process.platform !== 'win32' && regRuns > 0)) process.exitCode = 1;
} finally {
  for (const account of Object.values(keychainAccounts(installationId))) await secrets.delete(account).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
