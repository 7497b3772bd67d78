import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import { POLICY_KEYS, type Policy, type PolicyKey } from '../../../shared/policy';
import { UpdateSettingsSchema, UpdateStateSchema, type SettingsOverview, type UpdateSettings, type UpdateState } from '../../../shared/rpc';
import type { BackupService } from '../backup/service';
import { getSetting, setSetting } from '../db/repo/settings';
import type { Database } from '../db/types';
import { sendGuardMode, setSendGuardMode } from '../privacy/guard';
import { retentionRules, updateRetentionRules } from '../privacy/retention';
import type { Handlers } from '../rpc/dispatch';
import { aboutApp } from './about';
import type { PolicyFileReading } from './policyFile';

/** Written by the core for the shell's updater: the effective update settings, policy applied. */
export const UPDATE_SETTINGS_FILE = 'update-settings.json';
/** Written by the shell's updater for the status page. */
export const UPDATE_STATE_FILE = 'update-state.json';
/** Written by the core when an admin clicks "Restart to update"; the shell acts on it and removes it. */
export const UPDATE_RESTART_FILE = 'update-restart-request';

/** Policy keys whose feature is not built yet: validated, shown, not enforced. */
export const NOT_ENFORCED: readonly PolicyKey[] = [];
/** The retention rules the policy's minimum governs: the conversation itself (messages and their files). */
const RETAINED_KINDS = ['messages', 'media'] as const;

const DEFAULT_UPDATES: UpdateSettings = { url: null, channel: 'stable' };
const IDLE_STATE: UpdateState = { phase: 'idle', version: null, checkedAt: null, problem: null, installBy: null };

interface SecurityLike {
  settings(): { idleLockMinutes: number; requireTwoFactorForAdmins: boolean; requireTwoFactorForAuditors: boolean };
  updateSettings(patch: { idleLockMinutes?: number; requireTwoFactorForAdmins?: boolean; requireTwoFactorForAuditors?: boolean }): unknown;
}

export interface SettingsServiceDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  dataDir: string;
  installationId: string;
  reading: PolicyFileReading;
  accounts: SecurityLike;
  backups: Pick<BackupService, 'settings' | 'updateSettings'>;
}

export type SettingsService = ReturnType<typeof createSettingsService>;

const locked = (what: string): CodedError => new CodedError('FORBIDDEN', `${what} is set by your organisation's policy and cannot be changed here.`);

/**
 * The managed policy applied over the settings, key by key. At start each valid key is written into
 * the setting it governs (so every part of the core reads one value), and the handlers that change
 * those settings refuse a different value. Invalid keys were dropped by the reader and are logged.
 */
export function createSettingsService(deps: SettingsServiceDeps) {
  const { db, now, logger, reading } = deps;
  const policy: Policy = reading.policy;
  for (const problem of reading.problems) logger.warn({ policyKey: problem.key, path: reading.path }, `managed policy: ${problem.message}`);

  function updates(): UpdateSettings {
    const raw = getSetting(db, 'updates');
    const stored = raw ? UpdateSettingsSchema.partial().safeParse(JSON.parse(raw)) : null;
    return { ...DEFAULT_UPDATES, ...(stored?.success ? stored.data : {}), ...(policy.updateUrl ? { url: policy.updateUrl } : {}), ...(policy.updateChannel ? { channel: policy.updateChannel } : {}) };
  }

  function writeUpdateFile(): void {
    const effective = { ...updates(), allowedVersion: policy.allowedVersion ?? null, deferralDays: policy.updateDeferralDays ?? null, installationId: deps.installationId };
    writeFileSync(join(deps.dataDir, UPDATE_SETTINGS_FILE), `${JSON.stringify(effective)}\n`, { mode: 0o600 });
  }

  function updateState(): UpdateState {
    try {
      const parsed = UpdateStateSchema.safeParse(JSON.parse(readFileSync(join(deps.dataDir, UPDATE_STATE_FILE), 'utf8')));
      return parsed.success ? parsed.data : IDLE_STATE;
    } catch {
      return IDLE_STATE;
    }
  }

  /** Writes each policy value into the setting it governs (nothing when it is already so). */
  function apply(): PolicyKey[] {
    const applied = POLICY_KEYS.filter((k) => policy[k] !== undefined);
    const security = deps.accounts.settings();
    const patch: Parameters<SecurityLike['updateSettings']>[0] = {};
    if (policy.idleLockMinutes !== undefined && security.idleLockMinutes !== policy.idleLockMinutes) patch.idleLockMinutes = policy.idleLockMinutes;
    if (policy.twoFactorRequired !== undefined) {
      if (security.requireTwoFactorForAdmins !== policy.twoFactorRequired) patch.requireTwoFactorForAdmins = policy.twoFactorRequired;
      if (security.requireTwoFactorForAuditors !== policy.twoFactorRequired) patch.requireTwoFactorForAuditors = policy.twoFactorRequired;
    }
    if (Object.keys(patch).length > 0) deps.accounts.updateSettings(patch);
    if (policy.backupFolder !== undefined && deps.backups.settings().destination !== policy.backupFolder) deps.backups.updateSettings({ destination: policy.backupFolder });
    if (policy.sendGuardMode !== undefined && sendGuardMode(db) !== policy.sendGuardMode) setSendGuardMode(db, policy.sendGuardMode, now());
    const min = policy.retentionMinimumDays;
    if (min !== undefined) {
      const raise = retentionRules(db)
        .filter((r) => (RETAINED_KINDS as readonly string[]).includes(r.kind) && (r.legalMinimumDays < min || r.days < min))
        .map((r) => ({ kind: r.kind, days: Math.max(r.days, min), legalMinimumDays: Math.max(r.legalMinimumDays, min) }));
      if (raise.length > 0) updateRetentionRules(db, raise, { by: 'policy', now: now() });
    }
    writeUpdateFile();
    if (applied.length > 0) logger.info({ keys: applied, path: reading.path }, 'managed policy applied');
    return applied;
  }

  function sameOrigin(a: string, b: string): boolean {
    try {
      return new URL(a).origin === new URL(b).origin;
    } catch {
      return false;
    }
  }

  /** Wraps the handlers that change a policy-governed setting: a different value is refused, whole. */
  function guard(handlers: Handlers): void {
    const wrap = <M extends keyof Handlers>(name: M, check: (params: Parameters<Handlers[M]>[0]) => void): void => {
      const inner = handlers[name] as (p: unknown, ctx: unknown) => unknown;
      handlers[name] = ((params: Parameters<Handlers[M]>[0], ctx: unknown) => {
        check(params);
        return inner(params, ctx);
      }) as unknown as Handlers[M];
    };
    wrap('security.updateSettings', (p) => {
      if (policy.idleLockMinutes !== undefined && p.idleLockMinutes !== undefined && p.idleLockMinutes !== policy.idleLockMinutes) throw locked('The idle lock');
      const tf = policy.twoFactorRequired;
      if (tf !== undefined && [p.requireTwoFactorForAdmins, p.requireTwoFactorForAuditors].some((v) => v !== undefined && v !== tf)) throw locked('Two-factor sign-in');
    });
    wrap('backup.updateSettings', (p) => {
      if (policy.backupFolder !== undefined && p.destination !== undefined && p.destination !== policy.backupFolder) throw locked('The backup folder');
    });
    wrap('privacy.updateSettings', (p) => {
      if (policy.sendGuardMode !== undefined && p.sendGuard !== policy.sendGuardMode) throw locked('The send guard');
    });
    wrap('privacy.retention.update', (p) => {
      const min = policy.retentionMinimumDays;
      if (min !== undefined && p.rules.some((r) => (RETAINED_KINDS as readonly string[]).includes(r.kind) && (r.days < min || r.legalMinimumDays < min))) {
        throw new CodedError('FORBIDDEN', `Your organisation's policy keeps messages and their files at least ${min} days; a shorter rule or legal minimum cannot be set here.`);
      }
    });
    wrap('setup.pair', (p) => {
      if (policy.allowedRelayUrl !== undefined && !sameOrigin(p.relayUrl, policy.allowedRelayUrl)) {
        throw new CodedError('FORBIDDEN', `Your organisation's policy allows pairing only with ${new URL(policy.allowedRelayUrl).origin}.`);
      }
    });
  }

  /** Only a ready (downloaded and verified) update can be installed now. */
  function requestRestart(): boolean {
    if (updateState().phase !== 'ready') return false;
    writeFileSync(join(deps.dataDir, UPDATE_RESTART_FILE), `${now()}\n`, { mode: 0o600 });
    return true;
  }

  function updateUpdates(patch: Partial<UpdateSettings>): UpdateSettings {
    if (policy.updateUrl !== undefined && patch.url !== undefined && patch.url !== policy.updateUrl) throw locked('The update server');
    if (policy.updateChannel !== undefined && patch.channel !== undefined && patch.channel !== policy.updateChannel) throw locked('The update channel');
    const raw = getSetting(db, 'updates');
    const stored = raw ? (JSON.parse(raw) as Partial<UpdateSettings>) : {};
    setSetting(db, 'updates', JSON.stringify(UpdateSettingsSchema.parse({ ...DEFAULT_UPDATES, ...stored, ...patch })), now());
    writeUpdateFile();
    return updates();
  }

  function values(): SettingsOverview['values'] {
    const security = deps.accounts.settings();
    const u = updates();
    const effective: Record<PolicyKey, unknown> = {
      updateUrl: u.url,
      updateChannel: u.channel,
      allowedVersion: policy.allowedVersion ?? null,
      updateDeferralDays: policy.updateDeferralDays ?? null,
      allowedRelayUrl: policy.allowedRelayUrl ?? null,
      idleLockMinutes: security.idleLockMinutes,
      twoFactorRequired: security.requireTwoFactorForAdmins && security.requireTwoFactorForAuditors,
      retentionMinimumDays: retentionRules(db).find((r) => r.kind === 'messages')?.legalMinimumDays || null,
      backupFolder: deps.backups.settings().destination,
      sendGuardMode: sendGuardMode(db),
      languages: policy.languages ?? null,
    };
    return Object.fromEntries(POLICY_KEYS.map((k) => [k, { value: effective[k], locked: policy[k] !== undefined }]));
  }

  const applied = POLICY_KEYS.filter((k) => policy[k] !== undefined);
  return {
    policy,
    apply,
    guard,
    updates,
    updateUpdates,
    updateState,
    requestRestart,
    overview(): SettingsOverview {
      const about = aboutApp();
      return {
        values: values(),
        policy: { path: reading.path, found: reading.found, applied, notEnforced: NOT_ENFORCED.filter((k) => policy[k] !== undefined), problems: reading.problems },
        updates: { ...updates(), state: updateState() },
        about: { version: about.version, installationId: deps.installationId, licences: about.licences },
      };
    },
  };
}
