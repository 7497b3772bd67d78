import { z } from 'zod';
import { BacklogSchema } from '../wire';
import { POLICY_KEYS, POLICY_LANGUAGES, PolicyProblemSchema, UpdateChannelSchema, type PolicyKey } from '../policy';
import { method, ROLES } from './common';
import { RelayStateSchema } from './setup';

/** The admin's settings screen, the managed policy behind it, the status page and diagnostics. */

export const PolicyKeySchema = z.enum(POLICY_KEYS as [PolicyKey, ...PolicyKey[]]);

export const UpdateSettingsSchema = z.object({
  /** The clinic's update server; null: no updates are checked. */
  url: z.string().max(500).regex(/^https:\/\//, 'the update server must be an https:// address').nullable(),
  channel: UpdateChannelSchema,
});
export type UpdateSettings = z.infer<typeof UpdateSettingsSchema>;

/** What the shell last reported about updates (the core only relays it to the screen). */
export const UpdateStateSchema = z.object({
  phase: z.enum(['idle', 'checking', 'up_to_date', 'downloading', 'ready', 'refused', 'error', 'unsupported', 'no_release_key']),
  version: z.string().max(100).nullable(),
  checkedAt: z.number().int().nullable(),
  /** Why an offered update was refused or failed (a stable code such as MANIFEST_SIGNATURE_INVALID). */
  problem: z.string().max(200).nullable(),
  /** When a downloaded update installs at the latest (the deferral limit). */
  installBy: z.number().int().nullable(),
});
export type UpdateState = z.infer<typeof UpdateStateSchema>;

export const SettingsOverviewSchema = z.object({
  /** Every policy key's effective value (null: unset) and whether the organisation set it. */
  values: z.record(z.string(), z.object({ value: z.unknown(), locked: z.boolean() })),
  policy: z.object({
    /** Where this desk reads the policy from. */
    path: z.string(),
    found: z.boolean(),
    /** Keys the policy file set and that were applied. */
    applied: z.array(PolicyKeySchema),
    /** Keys the app knows but whose feature is not built yet (kept, shown, not enforced). */
    notEnforced: z.array(PolicyKeySchema),
    problems: z.array(PolicyProblemSchema),
  }),
  updates: UpdateSettingsSchema.extend({ state: UpdateStateSchema }),
  about: z.object({
    version: z.string(),
    installationId: z.string(),
    licences: z.array(z.object({ name: z.string(), version: z.string(), license: z.string() })),
  }),
});
export type SettingsOverview = z.infer<typeof SettingsOverviewSchema>;

export const HealthStatusSchema = z.object({
  at: z.number().int(),
  relay: z.object({ state: RelayStateSchema, offlineSince: z.number().int().nullable(), backlog: BacklogSchema.nullable() }),
  /** When the last message from a patient arrived (ms), null when none has. */
  lastDeliveryAt: z.number().int().nullable(),
  outbox: z.object({ queued: z.number().int(), sending: z.number().int(), failed: z.number().int(), oldestQueuedAt: z.number().int().nullable() }),
  whatsapp: z.object({ configured: z.boolean(), tokenExpired: z.boolean() }),
  backup: z.object({ lastGoodAt: z.number().int().nullable(), failuresSinceGood: z.number().int() }).nullable(),
  disk: z.object({ freeBytes: z.number().nullable(), totalBytes: z.number().nullable() }),
  databaseBytes: z.number().int(),
  keychainBackend: z.string(),
  update: UpdateStateSchema,
  policyProblems: z.number().int(),
});
export type HealthStatus = z.infer<typeof HealthStatusSchema>;

export const settingsMethods = {
  /** The interface languages the policy allows (null: all), for every screen including sign-in and the first run. */
  'settings.languages': method({
    input: z.object({}),
    output: z.object({ allowed: z.array(z.enum(POLICY_LANGUAGES)).min(1).nullable() }),
    roles: ROLES,
    signedOut: true,
    whileLocked: true,
    whilePasswordChange: true,
  }),
  'settings.overview': method({ input: z.object({}), output: SettingsOverviewSchema, roles: ['admin'] }),
  'settings.updateUpdates': method({ input: UpdateSettingsSchema.partial(), output: UpdateSettingsSchema, roles: ['admin'], audit: 'configure' }),
  /** "Restart to update": asks the shell to install a downloaded, verified update now (it restarts the app). */
  'updates.restartNow': method({ input: z.object({}), output: z.object({ requested: z.boolean() }), roles: ['admin'], audit: 'update' }),
  'status.health': method({ input: z.object({}), output: HealthStatusSchema, roles: ['admin'] }),
  /** A zip (base64) of versions, settings without secrets, recent log lines, metrics and the status: never patient data. */
  'diagnostics.export': method({
    input: z.object({}),
    output: z.object({ filename: z.string(), zipBase64: z.string(), bytes: z.number().int() }),
    roles: ['admin'],
    audit: 'export',
  }),
} as const;
