import { statfsSync, statSync } from 'node:fs';
import type { HealthStatus, RelayStatus, WhatsAppStatus } from '../../../shared/rpc';
import type { BackupService } from '../backup/service';
import type { Database } from '../db/types';
import type { SettingsService } from './service';

export interface HealthDeps {
  db: Database;
  now: () => number;
  dataDir: string;
  databasePath: string;
  keychainBackend: string;
  relay: () => RelayStatus;
  whatsapp: () => WhatsAppStatus;
  backups: Pick<BackupService, 'status'>;
  settings: Pick<SettingsService, 'updateState' | 'overview'>;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The admin's status page: counts and times only, never a patient. */
export function healthStatus(deps: HealthDeps): HealthStatus {
  const { db } = deps;
  const relay = deps.relay();
  const wa = deps.whatsapp();
  const outboxRows = db.prepare("SELECT state, count(*) AS n, min(created_at) AS oldest FROM outbox WHERE state IN ('queued', 'sending', 'failed') GROUP BY state").all() as {
    state: 'queued' | 'sending' | 'failed';
    n: number;
    oldest: number | null;
  }[];
  const count = (s: string) => outboxRows.find((r) => r.state === s)?.n ?? 0;
  const last = db.prepare("SELECT max(received_at) AS at FROM messages WHERE direction = 'inbound'").get() as { at: number | null };
  let backup: HealthStatus['backup'] = null;
  try {
    const b = deps.backups.status();
    backup = { lastGoodAt: b.lastGood?.at ?? null, failuresSinceGood: b.failuresSinceGood };
  } catch {
    backup = null;
  }
  let disk: HealthStatus['disk'] = { freeBytes: null, totalBytes: null };
  try {
    const fs = statfsSync(deps.dataDir);
    disk = { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
  } catch {
    // statfs is missing on some file systems; the page says "unknown".
  }
  return {
    at: deps.now(),
    relay: { state: relay.state, offlineSince: relay.offlineSince, backlog: relay.backlog },
    lastDeliveryAt: last.at,
    outbox: { queued: count('queued'), sending: count('sending'), failed: count('failed'), oldestQueuedAt: outboxRows.find((r) => r.state === 'queued')?.oldest ?? null },
    whatsapp: { configured: wa.configured, tokenExpired: wa.tokenExpired },
    backup,
    disk,
    databaseBytes: ['', '-wal', '-shm'].reduce((sum, suffix) => sum + fileBytes(deps.databasePath + suffix), 0),
    keychainBackend: deps.keychainBackend,
    update: deps.settings.updateState(),
    policyProblems: deps.settings.overview().policy.problems.length,
  };
}

/** Row counts per table: the "metrics" of a diagnostics export (how much, never what). */
export function tableCounts(db: Database): Record<string, number> {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts%' ORDER BY name").all() as { name: string }[];
  return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get() as { n: number }).n]));
}
