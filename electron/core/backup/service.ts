import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import type { BackupEntry, BackupSettings, BackupStatus, RpcEventName, RpcEventPayload } from '../../../shared/rpc';
import { SCHEMA_VERSION } from '../db/migrate';
import { getSetting, setSetting } from '../db/repo/settings';
import type { Database } from '../db/types';
import { createJobLoop } from '../jobLoop';
import { RECOVERY_FILE } from '../keys/recovery';
import { loadPairing } from '../link/pairing';
import { BACKUP_EXTENSION, BACKUP_FORMAT, BACKUP_FORMAT_VERSION, encodeTrailer, readTrailer, unwrapBackupKey, wrapBackupKey, type OuterHeader } from './format';
import { inspectSnapshot, runWorker, stopWorker } from './runWorker';

export type BackupTrigger = 'schedule' | 'manual' | 'restore' | 'migration' | 'erasure' | 'console';

export const DEFAULT_SETTINGS: BackupSettings = { destination: null, dailyAt: '02:00', keepDaily: 30, keepMonthly: 12 };

export interface BackupServiceDeps {
  db: Database;
  dataDir: string;
  databasePath: string;
  installationId: string;
  databaseKey: Buffer;
  now: () => number;
  logger: Logger;
  emit?: <E extends RpcEventName>(event: E, payload: RpcEventPayload<E>) => void;
}

export interface BackupService {
  settings(): BackupSettings;
  updateSettings(patch: Partial<BackupSettings>): BackupSettings;
  status(): BackupStatus;
  /** One backup now (joins a running one). `to` overrides the destination (the console). */
  runNow(trigger: BackupTrigger, to?: string): Promise<BackupEntry>;
  list(folder?: string): BackupEntry[];
  verify(file: string): Promise<{ ok: boolean; problem: string | null }>;
  /** Keeps `keepDaily` newest days and `keepMonthly` newest months; never the only verified backup. */
  prune(folder?: string): string[];
  /**
   * A brand-new installation nobody has used, which a restore from a file may replace: no user
   * account, no contact, conversation or message, no audit entry by a person, and not paired with
   * a relay. Anything else is a clinic's data and is never replaced.
   */
  neverUsed(): boolean;
  /** Also asks for a backup after a migration at start. */
  start(options?: { migrated?: boolean }): void;
  stop(): Promise<void>;
}

const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** `yyyymmdd-hhmmss-mmm` (UTC): to the millisecond, so two backups in one second never share a name. */
const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').slice(0, 19);

/** The next local `HH:MM` after `from`. */
export function nextDailyRun(dailyAt: string, from: number): number {
  const [h, m] = dailyAt.split(':').map(Number) as [number, number];
  const d = new Date(from);
  d.setHours(h, m, 0, 0);
  if (d.getTime() <= from) d.setDate(d.getDate() + 1);
  return d.getTime();
}

/** Which backups the policy keeps: all of the newest `keepDaily` days that have one, the newest per month for `keepMonthly` months. */
export function selectKept(entries: { file: string; createdAt: number; verified: boolean }[], keepDaily: number, keepMonthly: number): Set<string> {
  const newestFirst = [...entries].sort((a, b) => b.createdAt - a.createdAt);
  const kept = new Set<string>();
  const days = new Set<string>();
  const months = new Set<string>();
  for (const e of newestFirst) {
    // Every backup of the newest `keepDaily` days (a manual one beside the nightly one stays).
    const day = dayKey(e.createdAt);
    if (days.has(day) || days.size < keepDaily) {
      days.add(day);
      kept.add(e.file);
    }
  }
  for (const e of newestFirst) {
    const month = dayKey(e.createdAt).slice(0, 7);
    if (!months.has(month) && months.size < keepMonthly) {
      months.add(month);
      kept.add(e.file);
    }
  }
  // Never leave the folder without a backup that verified.
  if (![...kept].some((f) => newestFirst.find((e) => e.file === f)?.verified)) {
    const verified = newestFirst.find((e) => e.verified);
    if (verified) kept.add(verified.file);
  }
  return kept;
}

function fsyncPath(path: string, flags = 'r'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function createBackupService(deps: BackupServiceDeps): BackupService {
  const { db, logger } = deps;
  let running: Promise<BackupEntry> | null = null;
  let nextRunAt: number | null = null;
  const emit = deps.emit ?? (() => undefined);

  function settings(): BackupSettings {
    const raw = getSetting(db, 'backup.settings');
    return raw ? { ...DEFAULT_SETTINGS, ...(JSON.parse(raw) as Partial<BackupSettings>) } : { ...DEFAULT_SETTINGS };
  }

  /** The backup key, made (and wrapped under the database key) on the first backup. */
  function backupKey(): { key: Buffer; wrapped: OuterHeader['backupKey'] } {
    const row = db.prepare('SELECT salt, iv, wrapped FROM backup_key WHERE id = 1').get() as { salt: string; iv: string; wrapped: string } | undefined;
    if (row) {
      const wrapped = { salt: row.salt, iv: row.iv, data: row.wrapped };
      const key = unwrapBackupKey(wrapped, deps.databaseKey, deps.installationId);
      if (!key) throw new CodedError('INTERNAL', 'The backup key does not open with the database key.');
      return { key, wrapped };
    }
    const key = randomBytes(32);
    const wrapped = wrapBackupKey(key, deps.databaseKey, deps.installationId);
    db.prepare('INSERT INTO backup_key (id, salt, iv, wrapped, created_at) VALUES (1, ?, ?, ?, ?)').run(wrapped.salt, wrapped.iv, wrapped.data, deps.now());
    return { key, wrapped };
  }

  function record(trigger: BackupTrigger, startedAt: number, outcome: 'ok' | 'failed' | 'missed', extra: { file?: string; bytes?: number; code?: string } = {}): void {
    db.prepare('INSERT INTO backup_runs (started_at, finished_at, trigger, outcome, file_name, bytes, error_code) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      startedAt,
      deps.now(),
      trigger,
      outcome,
      extra.file ?? null,
      extra.bytes ?? null,
      extra.code ?? null,
    );
    emit('backup.statusChanged', {});
  }

  function destinationOf(to?: string): string {
    const folder = to ?? settings().destination;
    if (!folder) throw new CodedError('BAD_REQUEST', 'Choose a backup folder first (a NAS share or an external disk).');
    try {
      if (!statSync(folder).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new CodedError('UNAVAILABLE', 'The backup folder cannot be reached (disconnected disk or share?). Earlier backups are untouched.');
    }
    return folder;
  }

  function entryOf(folder: string, name: string): BackupEntry {
    const file = join(folder, name);
    try {
      const t = readTrailer(file);
      if (t.outer.installationId !== deps.installationId) throw new CodedError('RECOVERY_KEY_WRONG', 'another installation\u2019s backup');
      const key = unwrapBackupKey(t.outer.backupKey, deps.databaseKey, deps.installationId);
      if (!key) throw new CodedError('VALIDATION_FAILED', 'its key does not open');
      const sealed = t.unseal(key);
      const c = sealed.rowCounts;
      return {
        file,
        createdAt: t.outer.createdAt,
        bytes: t.fileBytes,
        schemaVersion: t.outer.schemaVersion,
        counts: { messages: c['messages'] ?? 0, contacts: c['contacts'] ?? 0, conversations: c['conversations'] ?? 0 },
        verified: true,
        problem: null,
      };
    } catch (err) {
      const size = existsSync(file) ? statSync(file).size : 0;
      return { file, createdAt: statSync(file).mtimeMs | 0, bytes: size, schemaVersion: 0, counts: null, verified: false, problem: err instanceof CodedError ? err.message : 'unreadable' };
    }
  }

  function list(folder?: string): BackupEntry[] {
    const dir = destinationOf(folder);
    return readdirSync(dir)
      .filter((n) => n.endsWith(BACKUP_EXTENSION) && !n.startsWith('.'))
      .map((n) => entryOf(dir, n))
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  function prune(folder?: string): string[] {
    const { keepDaily, keepMonthly } = settings();
    const entries = list(folder).filter((e) => e.problem === null || !e.problem.includes('another installation'));
    const kept = selectKept(entries, keepDaily, keepMonthly);
    const removed: string[] = [];
    for (const e of entries) {
      if (kept.has(e.file)) continue;
      rmSync(e.file, { force: true });
      removed.push(e.file);
    }
    return removed;
  }

  async function makeBackup(trigger: BackupTrigger, to?: string): Promise<BackupEntry> {
    const startedAt = deps.now();
    let tmp: string | null = null;
    let stopProgress = (): void => undefined;
    try {
      const folder = destinationOf(to);
      const { key, wrapped } = backupKey();
      const name = `clinic-inbox-${deps.installationId}-${stamp(startedAt)}${BACKUP_EXTENSION}`;
      tmp = join(folder, `.${name}.partial`);
      // What an interrupted run left (a pulled cable, a killed process): never listed, removed now.
      for (const left of readdirSync(folder)) if (left.startsWith(`.clinic-inbox-${deps.installationId}-`) && left.includes('.partial')) rmSync(join(folder, left), { force: true });
      emit('backup.progress', { phase: 'snapshot', fraction: 0 });
      // The copy grows towards the live database's size: that is the progress bar.
      const total = Math.max(1, statSync(deps.databasePath).size);
      const timer = setInterval(() => {
        try {
          emit('backup.progress', { phase: 'snapshot', fraction: Math.min(0.6, (statSync(tmp!).size / total) * 0.6) });
        } catch {
          // not there yet
        }
      }, 250);
      timer.unref();
      stopProgress = () => clearInterval(timer);
      const written = await runWorker({ kind: 'snapshot', livePath: deps.databasePath, databaseKey: deps.databaseKey.toString('hex'), outPath: tmp, backupKey: key.toString('hex') });
      stopProgress();
      emit('backup.progress', { phase: 'verify', fraction: 0.65 });
      // Read back from the folder: decrypt with the backup key, integrity_check, counts, hash.
      const verifyAt = deps.now();
      const seen = await inspectSnapshot({ path: tmp, key: key.toString('hex') });
      const verifyMs = deps.now() - verifyAt;
      if (seen.integrity !== 'ok') throw new CodedError('VALIDATION_FAILED', 'The written backup failed its integrity check.');
      emit('backup.progress', { phase: 'finish', fraction: 0.95 });
      const snapshotBytes = statSync(tmp).size;
      const recoveryPath = join(deps.dataDir, RECOVERY_FILE);
      const outer: OuterHeader = {
        format: BACKUP_FORMAT,
        version: BACKUP_FORMAT_VERSION,
        installationId: deps.installationId,
        createdAt: startedAt,
        schemaVersion: seen.schemaVersion,
        snapshotBytes,
        backupKey: wrapped,
        recovery: existsSync(recoveryPath) ? (JSON.parse(readFileSync(recoveryPath, 'utf8')) as Record<string, unknown>) : null,
      };
      appendFileSync(tmp, encodeTrailer(outer, { rowCounts: seen.rowCounts, contentHash: seen.contentHash, integrity: 'ok' }, key));
      fsyncPath(tmp, 'r+');
      // The header as it is on disk: it must authenticate and agree with what was verified.
      const back = readTrailer(tmp).unseal(key);
      if (back.contentHash !== seen.contentHash) throw new CodedError('VALIDATION_FAILED', 'The written backup header did not read back.');
      const final = join(folder, name);
      renameSync(tmp, final);
      tmp = null;
      fsyncPath(folder);
      record(trigger, startedAt, 'ok', { file: name, bytes: statSync(final).size });
      emit('backup.progress', { phase: 'done', fraction: 1 });
      // Where the time went (the benchmark's phase table; the IT admin's log): counts and ms only.
      const phases = { snapshotMs: written.vacuumMs, inlinedFiles: written.inlinedFiles, fsyncMs: written.fsyncMs, verifyMs, integrityMs: seen.ms.integrity, hashMs: seen.ms.hash, countsMs: seen.ms.counts };
      logger.info({ event: 'backup_ok', trigger, bytes: statSync(final).size, ms: deps.now() - startedAt, phases }, 'backup written and verified');
      try {
        const removed = prune(folder);
        if (removed.length) logger.info({ event: 'backup_pruned', count: removed.length }, 'old backups removed');
      } catch (err) {
        logger.warn({ err: err instanceof Error ? err.name : 'error' }, 'pruning failed');
      }
      return entryOf(folder, name);
    } catch (err) {
      stopProgress();
      if (tmp) for (const suffix of ['', '-journal']) rmSync(`${tmp}${suffix}`, { force: true });
      const code = err instanceof CodedError ? err.code : 'INTERNAL';
      // A counted event for monitoring; the admin sees it in backup.status.
      logger.error({ event: 'backup_failed', trigger, code }, 'backup failed; earlier backups are untouched');
      record(trigger, startedAt, 'failed', { code });
      emit('backup.progress', { phase: 'failed', fraction: 1 });
      if (err instanceof CodedError) throw err;
      throw new CodedError('INTERNAL', 'The backup failed; earlier backups are untouched.');
    }
  }

  function runNow(trigger: BackupTrigger, to?: string): Promise<BackupEntry> {
    running ??= makeBackup(trigger, to).finally(() => {
      running = null;
    });
    return running;
  }

  function lastRun(outcome: string): { at: number; file: string | null; bytes: number | null; code: string | null } | null {
    return (
      (db.prepare('SELECT started_at AS at, file_name AS file, bytes, error_code AS code FROM backup_runs WHERE outcome = ? ORDER BY id DESC LIMIT 1').get(outcome) as
        | { at: number; file: string | null; bytes: number | null; code: string | null }
        | undefined) ?? null
    );
  }

  function status(): BackupStatus {
    const good = lastRun('ok');
    const failed = (db.prepare(`SELECT started_at AS at, coalesce(error_code, 'MISSED') AS code FROM backup_runs WHERE outcome IN ('failed', 'missed') ORDER BY id DESC LIMIT 1`).get() as { at: number; code: string } | undefined) ?? null;
    const failures = db.prepare(`SELECT count(*) FROM backup_runs WHERE outcome IN ('failed', 'missed') AND id > coalesce((SELECT max(id) FROM backup_runs WHERE outcome = 'ok'), 0)`).pluck().get() as number;
    const s = settings();
    return {
      settings: s,
      running: running !== null,
      lastGood: good ? { at: good.at, file: good.file ?? '', bytes: good.bytes ?? 0 } : null,
      lastFailure: failed,
      failuresSinceGood: failures,
      nextRunAt: s.destination ? (nextRunAt ?? nextDailyRun(s.dailyAt, deps.now())) : null,
      recoveryKeyConfigured: existsSync(join(deps.dataDir, RECOVERY_FILE)),
    };
  }

  const pending = new Set<BackupTrigger>();
  const loop = createJobLoop({
    name: 'backup',
    logger,
    idleDelayMs: () => Math.max(1_000, Math.min(60 * 60_000, (nextRunAt ?? deps.now() + 60_000) - deps.now())),
    async pass() {
      const s = settings();
      if (!s.destination) return 0;
      const due = nextRunAt !== null && deps.now() >= nextRunAt;
      const trigger = pending.values().next().value ?? (due ? 'schedule' : null);
      if (!trigger) return 0;
      pending.clear();
      nextRunAt = nextDailyRun(s.dailyAt, deps.now());
      await runNow(trigger).catch(() => undefined);
      return 1;
    },
  });

  return {
    settings,
    updateSettings(patch) {
      const next = { ...settings(), ...patch };
      setSetting(db, 'backup.settings', JSON.stringify(next), deps.now());
      nextRunAt = nextDailyRun(next.dailyAt, deps.now());
      emit('backup.statusChanged', {});
      return next;
    },
    status,
    runNow,
    list,
    async verify(file) {
      try {
        const t = readTrailer(file);
        if (t.outer.installationId !== deps.installationId) return { ok: false, problem: 'This backup belongs to another installation.' };
        const key = unwrapBackupKey(t.outer.backupKey, deps.databaseKey, deps.installationId);
        if (!key) return { ok: false, problem: 'Its key does not open with this installation\u2019s database key: altered.' };
        const sealed = t.unseal(key);
        const seen = await inspectSnapshot({ path: file, key: key.toString('hex'), bytes: t.outer.snapshotBytes });
        if (seen.integrity !== 'ok') return { ok: false, problem: 'The snapshot failed its integrity check.' };
        if (seen.contentHash !== sealed.contentHash || JSON.stringify(seen.rowCounts) !== JSON.stringify(sealed.rowCounts)) return { ok: false, problem: 'The content does not match the header.' };
        if (t.outer.schemaVersion > SCHEMA_VERSION) return { ok: false, problem: `It has a newer schema (${t.outer.schemaVersion}).` };
        return { ok: true, problem: null };
      } catch (err) {
        return { ok: false, problem: err instanceof CodedError ? err.message : 'The file could not be read.' };
      }
    },
    prune,
    neverUsed() {
      const any = (sql: string) => db.prepare(sql).get() !== undefined;
      return (
        !any('SELECT 1 FROM users LIMIT 1') &&
        !any('SELECT 1 FROM contacts LIMIT 1') &&
        !any('SELECT 1 FROM conversations LIMIT 1') &&
        !any('SELECT 1 FROM messages LIMIT 1') &&
        !any(`SELECT 1 FROM audit_log WHERE user_id NOT IN ('signed-out', 'console') LIMIT 1`) &&
        loadPairing(db) === null
      );
    },
    start(options = {}) {
      backupKey(); // made now, so a backup does not change the data it copies
      const s = settings();
      const last = (db.prepare('SELECT max(started_at) FROM backup_runs').pluck().get() as number | null) ?? null;
      if (s.destination && last !== null && nextDailyRun(s.dailyAt, last) < deps.now()) {
        // The computer was off (or the core stopped) at the scheduled time: counted, then caught up.
        record('schedule', nextDailyRun(s.dailyAt, last), 'missed', { code: 'MISSED' });
        logger.warn({ event: 'backup_missed' }, 'a scheduled backup was missed; running it now');
        pending.add('schedule');
      }
      if (options.migrated) pending.add('migration');
      nextRunAt = nextDailyRun(s.dailyAt, deps.now());
      loop.start();
    },
    async stop() {
      await loop.stop();
      await running?.catch(() => undefined);
      await stopWorker();
    },
  };
}

/** Asks the scheduler for a backup soon (after an erasure or a restore). */
export function requestBackup(service: BackupService, trigger: BackupTrigger): void {
  if (!service.settings().destination) return;
  void service.runNow(trigger).catch(() => undefined);
}
