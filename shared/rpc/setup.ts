import { z } from 'zod';
import { isAllowedGraphBaseUrl, isAllowedRelayUrl } from '../urls';
import { BacklogSchema } from '../wire';
import { ROLES, method } from './common';

/** Pairing with the relay, the WhatsApp account, and the IT admin's recovery key. */

/** Whether an IT-admin recovery key exists for the database key (never the key itself). */
export const RecoveryStatusSchema = z.object({
  configured: z.boolean(),
  createdAt: z.number().int().nullable(),
  /** The IT admin said they stored it; until then the wizard returns to its recovery step with a new key. */
  confirmed: z.boolean(),
});
export type RecoveryStatus = z.infer<typeof RecoveryStatusSchema>;

/**
 * Where the access token is sent: Meta's Graph API over HTTPS, or a simulator on this computer
 * (tests, the demo). Anything else would hand the clinic's token to another host.
 */
export const GraphBaseUrlSchema = z.url().refine(isAllowedGraphBaseUrl, {
  message: 'must be https://graph.facebook.com, or a simulator on this computer (http://127.0.0.1:…)',
});

/**
 * The relay the appliance enrols with: HTTPS, so the relay key pinned at enrolment is the relay's;
 * plain HTTP only for a relay on this computer (tests, the demo).
 */
export const RelayUrlSchema = z.url().refine(isAllowedRelayUrl, { message: 'must start with https:// (plain http only for a relay on this computer)' });

/**
 * `refused`: the relay is reachable but will not accept this appliance; only an IT admin can fix it
 * (pair again, or correct the clock). `offline` is a link problem that heals by itself.
 */
export const RelayStateSchema = z.enum(['not_paired', 'connecting', 'connected', 'offline', 'refused']);
/**
 * Why the relay refuses this appliance:
 * - `revoked`: the operator revoked it, or the clinic was paired with another computer since;
 * - `not_recognised`: the relay does not know this appliance's device key (its records were reset);
 * - `device_keys_changed`: the keychain holds other device keys than the ones paired (the database
 *   was restored on new hardware), so the core does not even try;
 * - `clock_skew`: this computer's clock is too far from the relay's for its login to be accepted.
 * - `another_computer`: another computer keeps connecting as this appliance (a copy of its keys,
 *   e.g. a data folder restored elsewhere with the recovery key); this one stops until an admin acts.
 */
export const RelayRefusedReasonSchema = z.enum(['revoked', 'not_recognised', 'device_keys_changed', 'clock_skew', 'another_computer']);
export type RelayRefusedReason = z.infer<typeof RelayRefusedReasonSchema>;
export const RelayStatusSchema = z.object({
  state: RelayStateSchema,
  /** Since when the link has been down (ms), null while connected. */
  offlineSince: z.number().int().nullable(),
  /** What waits at the relay, as last reported; null when unknown. */
  backlog: BacklogSchema.nullable(),
  relayUrl: z.string().nullable(),
  /** Set while `state` is `refused`; null or absent otherwise. */
  refusedReason: RelayRefusedReasonSchema.nullable().optional(),
});
export type RelayStatus = z.infer<typeof RelayStatusSchema>;

/**
 * Whether this appliance checks Meta's `X-Hub-Signature-256` itself (it holds the app secret), with
 * counts since the secrets were last set. Never the secrets themselves.
 */
export const SignatureCheckStatusSchema = z.object({
  enabled: z.boolean(),
  /** How many app secrets are active (two while Meta rotates one). */
  secrets: z.number().int().min(0),
  /** When the current secrets were set (the counts start there); null when checking is off. */
  since: z.number().int().nullable(),
  /** Deliveries whose Meta signature checked out. */
  verified: z.number().int().min(0),
  /** Deliveries shelved, not shown, because Meta's signature did not check out (a wrong app secret, or a forgery). */
  failed: z.number().int().min(0),
  /** Of those, shelved since `since`: failing now, not yet looked at (entering the secret again re-checks and resets this). */
  failedSince: z.number().int().min(0),
  lastFailedAt: z.number().int().nullable(),
  /** Deliveries the relay re-serialised from a POST for several clinics: only the relay vouches for them. */
  relayVouched: z.number().int().min(0),
  /**
   * Only Meta-signed deliveries reach the inbox: relay-re-serialised ones are shelved and counted in
   * `failed` (for a clinic with its own Meta app, so the relay's key alone cannot add messages).
   * Always false while `enabled` is false.
   */
  required: z.boolean(),
});
export type SignatureCheckStatus = z.infer<typeof SignatureCheckStatusSchema>;

// message shapes
/**
 * What arrived that the inbox could not show as it came (issue 9): shelved items by reason
 * (encrypted in the database, kept whole), changes of fields this version ignores, messages no
 * sender could be named for, messages shown as "cannot show yet", and Meta's recent value-level
 * errors with their title and details. Counts, field names, error codes and Meta's own wording
 * only: never patient text or numbers.
 */
export const IngestTraceSchema = z.object({
  unattributable: z.object({ count: z.number().int().nonnegative(), lastAt: z.number().int().nullable() }),
  ignoredFields: z.array(z.object({ field: z.string(), count: z.number().int().nonnegative(), lastAt: z.number().int() })),
  shelved: z.array(z.object({ reason: z.string(), count: z.number().int().nonnegative(), lastAt: z.number().int() })),
  unsupported: z.array(z.object({ reason: z.string(), count: z.number().int().nonnegative(), lastAt: z.number().int() })),
  recentErrors: z.array(
    z.object({
      code: z.number().int(),
      title: z.string().nullable(),
      message: z.string().nullable(),
      details: z.string().nullable(),
      href: z.string().nullable(),
      phoneNumberId: z.string().nullable(),
      at: z.number().int(),
    }),
  ),
});
export type IngestTraceStatus = z.infer<typeof IngestTraceSchema>;

export const WhatsAppStatusSchema = z.object({
  configured: z.boolean(),
  tokenExpired: z.boolean(),
  phoneNumberIds: z.array(z.string()),
  signatureCheck: SignatureCheckStatusSchema,
  /** Additive (issue 9): deliveries shelved, ignored or unattributed, and Meta's recent errors. */
  ingest: IngestTraceSchema.optional(),
});
export type WhatsAppStatus = z.infer<typeof WhatsAppStatusSchema>;

/**
 * The Meta app secret (App settings > Basic > App secret: 32 characters 0-9, a-f), or several
 * separated by spaces or commas while Meta rotates it. Zod issues never echo the value.
 */
export const AppSecretsInputSchema = z
  .string()
  .max(200)
  .transform((s) => [...new Set(s.toLowerCase().split(/[\s,]+/).filter((x) => x.length > 0))])
  .pipe(
    z
      .array(z.string().regex(/^[0-9a-f]{32}$/, 'a Meta app secret is 32 characters, 0-9 and a-f'))
      .min(1, 'enter the app secret')
      .max(3, 'at most three app secrets at once'),
  );


export const setupMethods = {
  'relay.status': method({
    input: z.object({}),
    output: RelayStatusSchema,
    roles: ROLES,
  }),
  'whatsapp.status': method({
    input: z.object({}),
    output: WhatsAppStatusSchema,
    roles: ROLES,
  }),
  /** What the first run connected this computer to: the relay's clinic and Meta's view of its numbers. */
  'whatsapp.account': method({
    input: z.object({}),
    output: z.object({
      tenantId: z.string().nullable(),
      relayUrl: z.string().nullable(),
      wabaId: z.string().nullable(),
      phoneNumbers: z.array(
        z.object({
          id: z.string(),
          displayPhoneNumber: z.string().nullable(),
          verifiedName: z.string().nullable(),
          /** Meta's quality rating: GREEN, YELLOW, RED or UNKNOWN. */
          qualityRating: z.string().nullable(),
        }),
      ),
    }),
    roles: ['admin'],
  }),
  'recovery.status': method({
    input: z.object({}),
    output: RecoveryStatusSchema,
    roles: ['admin'],
  }),
  /** Shown once: the core keeps only the database key wrapped under it. */
  'recovery.create': method({
    input: z.object({
      /** An existing recovery key stops working when a new one is made; say so explicitly. */
      replace: z.boolean().default(false),
    }),
    output: z.object({ recoveryKey: z.string().regex(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/), createdAt: z.number().int() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  /** The IT admin stored the key created at `createdAt`; `confirmed: false` when a newer key replaced it. */
  'recovery.confirm': method({
    input: z.object({ createdAt: z.number().int() }),
    output: z.object({ confirmed: z.boolean() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  /**
   * New hardware: the keychain lost the database key. The only method a core in that state answers;
   * it proves the unwrapped key opens the database before writing it to the keychain.
   */
  'recovery.restore': method({
    input: z.object({ recoveryKey: z.string().trim().min(1).max(100) }),
    output: z.object({ installationId: z.string(), restored: z.boolean() }),
    roles: ['admin'],
    /** The recovery key is the credential: the accounts live in the database it unlocks. */
    signedOut: true,
    audit: 'configure',
  }),
  'setup.pair': method({
    input: z.object({ relayUrl: RelayUrlSchema, code: z.string().min(1).max(40) }),
    output: z.object({ tenantId: z.string(), applianceId: z.string(), phoneNumberIds: z.array(z.string()) }),
    roles: ['admin'],
    audit: 'configure',
  }),
  'setup.whatsapp': method({
    input: z.object({
      wabaId: z.string().regex(/^\d{1,32}$/),
      accessToken: z.string().min(20).max(1000),
      graphBaseUrl: GraphBaseUrlSchema.optional(),
      /** Absent: keep the app secret(s) already set; null: stop checking Meta's signature here. */
      appSecret: AppSecretsInputSchema.nullable().optional(),
      /** Absent: keep the setting. True needs an app secret, stored or given here (VALIDATION_FAILED otherwise). */
      requireMetaSignature: z.boolean().optional(),
    }),
    output: WhatsAppStatusSchema,
    roles: ['admin'],
    audit: 'configure',
  }),
} as const;
