import { strToU8, zipSync } from 'fflate';
import type { HealthStatus, SettingsOverview } from '../../../shared/rpc';
import { recentLogLines } from './logFile';

export interface DiagnosticsInput {
  now: number;
  dataDir: string;
  versions: Record<string, string | number | null>;
  overview: SettingsOverview;
  /** Other settings shown to support (security, backups); secrets never reach here. */
  settings: Record<string, unknown>;
  metrics: Record<string, unknown>;
  status: HealthStatus;
}

/** Keys whose values are dropped wherever they appear, in case a secret ever strays into settings. */
const SECRET_KEY = /secret|token|password|passphrase|pin|key$|recovery|otp/i;

export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && k !== 'installationId' ? '[removed]' : withoutSecrets(v)]));
  }
  return value;
}

/**
 * The support bundle: versions, settings without secrets, the recent log, counts and the status
 * page. Nothing in it is read from patient tables except counts; the log holds ids and counts only
 * (a rule every part keeps, and the diagnostics test proves against seeded patients).
 */
export function diagnosticsZip(input: DiagnosticsInput): Uint8Array {
  const json = (v: unknown) => strToU8(`${JSON.stringify(v, null, 2)}\n`);
  const mtime = new Date(input.now);
  return zipSync(
    {
      'versions.json': json(input.versions),
      'settings.json': json(withoutSecrets({ ...input.settings, policy: input.overview.policy, values: input.overview.values, updates: input.overview.updates })),
      'status.json': json(input.status),
      'metrics.json': json(input.metrics),
      'log.txt': strToU8(`${recentLogLines(input.dataDir).join('\n')}\n`),
    },
    { level: 6, mtime },
  );
}
