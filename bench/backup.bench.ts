// Backups at clinic scale (1,000,000 messages by default; CLINIC_BENCH_MESSAGES shrinks it):
// backup vs copying the same file in the same run (target ≥ 0.3), resident memory before/during/
// after, restore on an empty keychain (RTO, ratio to the copy), inbox page p95 while a backup runs
// (< 20 ms). Needs the OS keychain (see coreData.bench.ts for the throwaway-keyring recipe).
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createBackupService } from '../electron/core/backup/service';
import { restoreFromFile } from '../electron/core/backup/restore';
import { runWorker } from '../electron/core/backup/runWorker';
import { DATABASE_FILE } from '../electron/core/db/coreStore';
import { openDatabase } from '../electron/core/db/open';
import { listConversations } from '../electron/core/db/repo/conversations';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { createRecoveryKey } from '../electron/core/keys/recovery';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';

const MESSAGES = Number(process.env.CLINIC_BENCH_MESSAGES ?? 1_000_000);
const CONTACTS = Math.max(100, Math.round(MESSAGES / 50));
// Not keyed by schema: openDatabase migrates a cached clinic forward.
const dir = join(tmpdir(), 'clinic-inbox-bench', `backup-${MESSAGES}`);
const dbPath = join(dir, DATABASE_FILE);
const keyPath = join(dir, 'bench.key');
const installationId = 'benchbackup0000000000000aa';

function generate(): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const key = randomBytes(32);
  const { db } = openDatabase({ path: dbPath, key });
  const words = 'termin rezept befund praxis ärztin überweisung impfung labor ergebnis kontrolle bitte danke morgen heute'.split(' ');
  db.transaction(() => {
    const c = db.prepare('INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, 0, 0)');
    const v = db.prepare("INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (?, ?, '110000000000001', ?, 0, 0)");
    for (let i = 1; i <= CONTACTS; i += 1) {
      c.run(i, `49151${String(i).padStart(8, '0')}`, `Patient ${i}`);
      v.run(i, i, i * 1000);
    }
    const m = db.prepare("INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, 'inbound', 'text', ?, '{}', ?, ?, 'received')");
    for (let i = 1; i <= MESSAGES; i += 1) {
      const text = Array.from({ length: 12 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');
      m.run(1 + (i % CONTACTS), `wamid.B${i}`, text, i * 1000, i * 1000);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  writeFileSync(join(dir, 'installation-id'), `${installationId}\n`);
  writeFileSync(keyPath, key.toString('hex'));
}

const rssMb = () => process.memoryUsage().rss / 1e6;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? 0;

async function main(): Promise<void> {
  if (!existsSync(keyPath)) {
    process.stdout.write(`generating ${MESSAGES.toLocaleString('en')} messages into ${dir} …\n`);
    generate();
  }
  const key = Buffer.from(readFileSync(keyPath, 'utf8').trim(), 'hex');
  const size = statSync(dbPath).size;
  const out = join(dir, 'out');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  // The service's own log line of a good backup carries its phase times (ms).
  let phaseLog: Record<string, number> = {};
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        const o = JSON.parse(line) as { event?: string; phases?: Record<string, number> };
        if (o.event === 'backup_ok' && o.phases) phaseLog = o.phases;
      },
    },
  );

  let t = performance.now();
  copyFileSync(dbPath, join(out, 'copy.db'));
  const copyS = (performance.now() - t) / 1000;
  // The same copy made durable (a backup is fsynced before it is renamed), for reference.
  t = performance.now();
  copyFileSync(dbPath, join(out, 'copy.db'));
  const fd = openSync(join(out, 'copy.db'), 'r+');
  fsyncSync(fd);
  closeSync(fd);
  const copySyncS = (performance.now() - t) / 1000;
  rmSync(join(out, 'copy.db'));

  const { db } = openDatabase({ path: dbPath, key });
  const prepared = createRecoveryKey({ dataDir: dir, installationId, keys: { databaseKey: key.toString('hex'), deviceSigningKey: 'AAAA', deviceEncryptionKey: 'AAAA' }, now: Date.now() });
  prepared.save();
  // Wall time per phase, from the progress events the screen's bar shows.
  const phases: [string, number][] = [];
  const backups = createBackupService({
    db,
    dataDir: dir,
    databasePath: dbPath,
    installationId,
    databaseKey: key,
    now: Date.now,
    logger,
    emit: (event, payload) => {
      if (event !== 'backup.progress') return;
      const { phase } = payload as { phase: string };
      if (phases.at(-1)?.[0] !== phase) phases.push([phase, performance.now()]);
    },
  });
  // The worker thread's start: from source it loads tsx and transpiles the worker's imports (seconds
  // on a busy machine); a built app starts plain JS. Timed apart, then the worker is reused.
  const rssIdle = rssMb();
  t = performance.now();
  await Promise.all([runWorker({ kind: 'ping' }, 0), runWorker({ kind: 'ping' }, 1)]);
  const workerStartS = (performance.now() - t) / 1000;
  const rssBefore = rssMb();
  let rssPeak = rssBefore;
  const pages: number[] = [];
  let done = false;
  t = performance.now();
  const run = backups.runNow('console', out).finally(() => (done = true));
  // The inbox page a receptionist waits on, while the backup runs.
  while (!done) {
    const s = performance.now();
    listConversations(db, { filter: { kind: 'all' }, limit: 50 });
    pages.push(performance.now() - s);
    rssPeak = Math.max(rssPeak, rssMb());
    await new Promise((r) => setTimeout(r, 20));
  }
  const entry = await run;
  const backupS = (performance.now() - t) / 1000;
  const rssAfter = rssMb();
  db.close();

  // New hardware: empty data folder, empty keychain (a keychain service of its own).
  const secrets = await createKeytarSecretStore({ service: `clinic-inbox-bench-restore-${process.pid}` });
  const target = join(dir, 'restored');
  rmSync(target, { recursive: true, force: true });
  t = performance.now();
  // Device keys in the bench are placeholders: restore only the database here.
  let rtoS = NaN;
  try {
    await restoreFromFile({ dataDir: target, path: entry.file, recoveryKey: prepared.recoveryKey, secrets });
    rtoS = (performance.now() - t) / 1000;
  } finally {
    for (const a of Object.values(keychainAccounts(installationId))) await secrets.delete(a);
    rmSync(target, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
  const f = (n: number) => n.toFixed(2);
  const s = (ms: number | undefined) => f((ms ?? NaN) / 1000);
  const table =
    `phases: snapshot (VACUUM INTO under the backup key) ${s(phaseLog['snapshotMs'])} s, fsync ${s(phaseLog['fsyncMs'])} s, ` +
    `verify ${s(phaseLog['verifyMs'])} s = in parallel [integrity_check ${s(phaseLog['integrityMs'])} s] and [plaintext hash ${s(phaseLog['hashMs'])} s + row counts ${s(phaseLog['countsMs'])} s]\n`;
  const perPhase = phases
    .slice(0, -1)
    .map(([name, at], i) => `${name} ${f((phases[i + 1]![1] - at) / 1000)} s`)
    .join(', ');
  process.stdout.write(
    `database ${(size / 1e6).toFixed(0)} MB, ${MESSAGES.toLocaleString('en')} messages; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n` +
      `backup workers (two) start (tsx, from source) ${f(workerStartS)} s, not counted below\n` +
      `copy ${f(copyS)} s (with fsync ${f(copySyncS)} s); backup ${f(backupS)} s (${perPhase}) → speed ratio ${f(copyS / backupS)} (target ≥ 0.30) ${copyS / backupS >= 0.3 ? 'OK' : 'MISS'}\n` +
      `${table}ratio against the durable copy ${f(copySyncS / backupS)}\n` +
      `RSS MB idle ${f(rssIdle)}, with the workers up ${f(rssBefore)}, peak during ${f(rssPeak)}, after ${f(rssAfter)} (growth ${f(rssPeak - rssBefore)} MB)\n` +
      `restore on an empty keychain (RTO) ${f(rtoS)} s → ratio to copy ${f(copyS / rtoS)}; target < 900 s ${rtoS < 900 ? 'OK' : 'MISS'}\n` +
      `inbox page during backup: p95 ${f(p95(pages))} ms over ${pages.length} pages (target < 20 ms) ${p95(pages) < 20 ? 'OK' : 'MISS'}\n`,
  );
}

await main();
