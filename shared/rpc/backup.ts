import { z } from 'zod';
import { Id, method } from './common';

/** Backups and disaster recovery (admins), and the erasure of one patient that backups honour. */

export const BackupSettingsSchema = z.object({
  /** The folder backups go to (a NAS share, an external disk); null until an admin picks one. */
  destination: z.string().min(1).max(1000).nullable(),
  /** Local time of the daily backup, `HH:MM`. */
  dailyAt: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
  keepDaily: z.number().int().min(1).max(365),
  keepMonthly: z.number().int().min(0).max(120),
});
export type BackupSettings = z.infer<typeof BackupSettingsSchema>;

export const BackupStatusSchema = z.object({
  settings: BackupSettingsSchema,
  running: z.boolean(),
  lastGood: z.object({ at: z.number().int(), file: z.string(), bytes: z.number().int() }).nullable(),
  lastFailure: z.object({ at: z.number().int(), code: z.string() }).nullable(),
  /** Failed or missed runs since the last good one: the admin banner shows while it is > 0. */
  failuresSinceGood: z.number().int().nonnegative(),
  nextRunAt: z.number().int().nullable(),
  /** False: a backup cannot be restored on new hardware until an IT admin makes a recovery key. */
  recoveryKeyConfigured: z.boolean(),
});
export type BackupStatus = z.infer<typeof BackupStatusSchema>;

export const BackupEntrySchema = z.object({
  file: z.string(),
  createdAt: z.number().int(),
  bytes: z.number().int(),
  schemaVersion: z.number().int(),
  /** Messages and contacts it holds (for the confirm dialog). */
  counts: z.object({ messages: z.number().int(), contacts: z.number().int(), conversations: z.number().int() }).nullable(),
  /** The header is intact and authenticates with this installation's backup key (a full check is `backup.verify`). */
  verified: z.boolean(),
  problem: z.string().nullable(),
});
export type BackupEntry = z.infer<typeof BackupEntrySchema>;

export const RestoreResultSchema = z.object({
  installationId: z.string(),
  createdAt: z.number().int(),
  /** Patients erased after the backup was made, erased again before the data was shown. */
  erasuresReapplied: z.number().int().nonnegative(),
});

const BackupFile = z.string().min(1).max(1000);

export const backupMethods = {
  'backup.status': method({ input: z.object({}), output: BackupStatusSchema, roles: ['admin'] }),
  'backup.getSettings': method({ input: z.object({}), output: BackupSettingsSchema, roles: ['admin'] }),
  'backup.updateSettings': method({ input: BackupSettingsSchema.partial(), output: BackupSettingsSchema, roles: ['admin'], audit: 'configure' }),
  /** Starts a backup now; progress arrives as `backup.progress`, the result also in `backup.status`. */
  'backup.runNow': method({ input: z.object({}), output: BackupEntrySchema, roles: ['admin'], audit: 'export' }),
  'backup.list': method({ input: z.object({}), output: z.array(BackupEntrySchema), roles: ['admin'] }),
  /** Decrypts, opens, `integrity_check`, row counts and content hash against the header. */
  'backup.verify': method({ input: z.object({ file: BackupFile }), output: z.object({ ok: z.boolean(), problem: z.string().nullable() }), roles: ['admin'], audit: 'read' }),
  /** Same computer: the backup replaces the database at the core's next start (the current one is kept aside). */
  'backup.restore': method({ input: z.object({ file: BackupFile }), output: RestoreResultSchema.extend({ restartRequired: z.literal(true) }), roles: ['admin'], audit: 'update' }),
  /** New hardware (empty keychain; answered by the locked core): the recovery key is the credential. */
  'backup.restoreFromFile': method({
    input: z.object({ path: BackupFile, recoveryKey: z.string().min(1).max(200) }),
    output: RestoreResultSchema,
    roles: ['admin'],
    signedOut: true,
    audit: 'update',
  }),
  'privacy.eraseContact': method({
    input: z.object({ contactId: Id, reason: z.string().trim().min(3).max(500) }),
    output: z.object({ erased: z.literal(true) }),
    roles: ['admin'],
    audit: 'delete',
  }),
} as const;

export const backupEvents = {
  'backup.progress': z.object({ phase: z.enum(['snapshot', 'verify', 'finish', 'done', 'failed']), fraction: z.number().min(0).max(1) }),
  /** `backup.status` changed (a run finished or failed, settings changed). */
  'backup.statusChanged': z.object({}),
} as const;
