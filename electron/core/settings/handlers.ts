import type { Handlers } from '../rpc/dispatch';
import type { Database } from '../db/types';
import { diagnosticsZip } from './diagnostics';
import { healthStatus, tableCounts, type HealthDeps } from './health';
import type { SettingsService } from './service';
import { aboutApp } from './about';

export interface SettingsHandlerDeps extends HealthDeps {
  db: Database;
  settings: SettingsService;
  installationId: string;
  securitySettings: () => object;
  backupSettings: () => object;
}

type SettingsHandlers = Pick<Handlers, 'settings.languages' | 'settings.overview' | 'settings.updateUpdates' | 'updates.restartNow' | 'status.health' | 'diagnostics.export'>;

export function createSettingsHandlers(deps: SettingsHandlerDeps): SettingsHandlers {
  const { db, settings } = deps;
  return {
    'settings.languages': () => ({ allowed: settings.policy.languages ?? null }),
    'settings.overview': () => settings.overview(),
    'settings.updateUpdates': (patch) => settings.updateUpdates(patch),
    'updates.restartNow': () => ({ requested: settings.requestRestart() }),
    'status.health': () => healthStatus(deps),
    'diagnostics.export': () => {
      const now = deps.now();
      const sqlite = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      const cipher = db.pragma('cipher', { simple: true }) as string | null;
      const zip = diagnosticsZip({
        now,
        dataDir: deps.dataDir,
        versions: {
          app: aboutApp().version,
          node: process.versions.node,
          electron: process.versions['electron'] ?? null,
          sqlite,
          cipher,
          schema: db.pragma('user_version', { simple: true }) as number,
          platform: process.platform,
          arch: process.arch,
          installationId: deps.installationId,
        },
        overview: settings.overview(),
        settings: { security: deps.securitySettings(), backup: deps.backupSettings() },
        metrics: { rows: tableCounts(db), uptimeSeconds: Math.round(process.uptime()), rssBytes: process.memoryUsage().rss },
        status: healthStatus(deps),
      });
      const stamp = new Date(now).toISOString().replace(/[-:]/g, '').slice(0, 15);
      return { filename: `clinic-inbox-diagnostics-${stamp}.zip`, zipBase64: Buffer.from(zip).toString('base64'), bytes: zip.length };
    },
  };
}
