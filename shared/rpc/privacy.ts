import { z } from 'zod';
import { Id, method } from './common';

/**
 * Privacy operations: consent and opt-out, the personal-data guard, patients' rights requests,
 * the access/portability export, legal holds and retention. Desk work (recording consent,
 * registering a request) is the receptionist's and the admin's; policy, holds, exports and purges
 * are the admin's. (`privacy.eraseContact` lives in the backup slice, beside what honours it.)
 */

export const CONSENT_STATUSES = ['unknown', 'opted_in', 'opted_out'] as const;
export const ConsentStatusSchema = z.enum(CONSENT_STATUSES);
export type ConsentStatus = z.infer<typeof ConsentStatusSchema>;
/** `keyword`: the patient wrote STOP/START; `meta`: Meta reported the patient stopped marketing messages (131050). */
export const ConsentSourceSchema = z.enum(['patient_wrote', 'form', 'desk', 'imported', 'keyword', 'meta']);
export type ConsentSource = z.infer<typeof ConsentSourceSchema>;

export const ConsentEventSchema = z.object({
  status: ConsentStatusSchema,
  source: ConsentSourceSchema,
  at: z.number().int(),
  /** User id, or `system` for a keyword or Meta's signal. */
  by: z.string(),
  byName: z.string().nullable(),
  note: z.string().nullable(),
});
export type ConsentEvent = z.infer<typeof ConsentEventSchema>;

export const ConsentSchema = z.object({
  contactId: Id,
  status: ConsentStatusSchema,
  /** Null while nothing was ever recorded (status `unknown`). */
  current: ConsentEventSchema.nullable(),
  /** Newest first. */
  history: z.array(ConsentEventSchema),
  /** Templates are refused while opted out; this says why, in words for the composer. */
  templatesAllowed: z.boolean(),
});
export type Consent = z.infer<typeof ConsentSchema>;

export const KEYWORD_LANGUAGES = ['nl', 'de', 'en', 'fr', 'es'] as const;
export const KeywordLanguageSchema = z.enum(KEYWORD_LANGUAGES);
export type KeywordLanguage = z.infer<typeof KeywordLanguageSchema>;
const KeywordList = z.array(z.string().trim().min(2).max(40)).max(30);
const PerLanguage = z.object({ nl: KeywordList, de: KeywordList, en: KeywordList, fr: KeywordList, es: KeywordList });
/** Matched against a whole inbound message, case, accents and punctuation ignored. */
export const PrivacyKeywordsSchema = z.object({ optOut: PerLanguage, optIn: PerLanguage, access: PerLanguage });
export type PrivacyKeywords = z.infer<typeof PrivacyKeywordsSchema>;

export const FINDING_KIND_NAMES = ['email', 'phone', 'iban', 'date_of_birth', 'bsn', 'nhs', 'steuer_id', 'nir', 'rrn'] as const;
export const FindingSchema = z.object({
  kind: z.enum(FINDING_KIND_NAMES),
  /** UTF-16 offsets into the checked text. */
  start: z.number().int().nonnegative(),
  end: z.number().int().nonnegative(),
  confidence: z.number().min(0).max(1),
});
export type PersonalDataFinding = z.infer<typeof FindingSchema>;

/** `warn`: the composer warns and asks to confirm; `block`: the core refuses text with an identifier. */
export const SendGuardModeSchema = z.enum(['warn', 'block']);
export type SendGuardMode = z.infer<typeof SendGuardModeSchema>;
export const PrivacySettingsSchema = z.object({ sendGuard: SendGuardModeSchema });
export type PrivacySettings = z.infer<typeof PrivacySettingsSchema>;

export const REQUEST_KINDS = ['access', 'portability', 'erasure', 'rectification'] as const;
export const RequestKindSchema = z.enum(REQUEST_KINDS);
export type RequestKind = z.infer<typeof RequestKindSchema>;
/** `due`: more than 7 days left; `soon`: 7 days or fewer (amber); `overdue` (red); `done`. */
export const RequestDueStateSchema = z.enum(['due', 'soon', 'overdue', 'done']);
export type RequestDueState = z.infer<typeof RequestDueStateSchema>;
export const PrivacyRequestSchema = z.object({
  id: Id,
  contactId: Id,
  /** Null once the patient was erased (the register outlives the erasure). */
  contactName: z.string().nullable(),
  kind: RequestKindSchema,
  via: z.enum(['desk', 'whatsapp']),
  receivedAt: z.number().int(),
  registeredBy: z.string(),
  dueAt: z.number().int(),
  dueState: RequestDueStateSchema,
  note: z.string().nullable(),
  doneAt: z.number().int().nullable(),
  doneBy: z.string().nullable(),
  outcome: z.string().nullable(),
});
export type PrivacyRequest = z.infer<typeof PrivacyRequestSchema>;

export const LegalHoldSchema = z.object({ contactId: Id, reason: z.string(), setBy: z.string(), setAt: z.number().int() });
export type LegalHold = z.infer<typeof LegalHoldSchema>;

export const RETENTION_KINDS = ['messages', 'media', 'drafts', 'audit'] as const;
export const RetentionKindSchema = z.enum(RETENTION_KINDS);
export type RetentionKind = z.infer<typeof RetentionKindSchema>;
/** 20 years: nothing is kept longer by policy. */
export const RETENTION_MAX_DAYS = 7305;
export const RetentionRuleSchema = z.object({
  kind: RetentionKindSchema,
  days: z.number().int().min(1).max(RETENTION_MAX_DAYS),
  /** The shortest the law the admin picked allows (0: none); `days` may never go below it. */
  legalMinimumDays: z.number().int().min(0).max(RETENTION_MAX_DAYS),
  updatedAt: z.number().int(),
  updatedBy: z.string(),
});
export type RetentionRule = z.infer<typeof RetentionRuleSchema>;
export const RetentionCountsSchema = z.object({
  messages: z.number().int().nonnegative(),
  conversations: z.number().int().nonnegative(),
  media: z.number().int().nonnegative(),
  /** Drafts live only in the window's memory; nothing is stored to purge. */
  drafts: z.number().int().nonnegative(),
  /** Audit entries pruned (preview: that a run would prune); the chain verifies from its anchor on. */
  audit: z.number().int().nonnegative(),
  /** Audit entries older than the policy when the run started (what it prunes, unless a newer entry precedes one). */
  auditDue: z.number().int().nonnegative(),
  /** Audit entries past the policy kept because of a legal hold: from the first one about a held patient on (a chain loses only a prefix); pruned once the hold is lifted. */
  auditHeld: z.number().int().nonnegative(),
  /** Patients skipped because they are under legal hold. */
  heldPatients: z.number().int().nonnegative(),
});
export type RetentionCounts = z.infer<typeof RetentionCountsSchema>;
export const RetentionRunSchema = z.object({
  id: Id,
  startedAt: z.number().int(),
  finishedAt: z.number().int().nullable(),
  trigger: z.enum(['schedule', 'manual']),
  outcome: z.enum(['running', 'ok', 'failed']),
  counts: RetentionCountsSchema.nullable(),
  longestHoldMs: z.number().nullable(),
});
export type RetentionRun = z.infer<typeof RetentionRunSchema>;

export const ExportResultSchema = z.object({
  /** The zip's full path, in the folder the user picked. */
  path: z.string(),
  bytes: z.number().int(),
  counts: z.object({ messages: z.number().int(), media: z.number().int(), conversations: z.number().int() }),
});
export type ExportResult = z.infer<typeof ExportResultSchema>;

const Reason = z.string().trim().min(3).max(500);

export const privacyMethods = {
  'privacy.getConsent': method({ input: z.object({ contactId: Id }), output: ConsentSchema, roles: ['receptionist', 'admin'], audit: 'read' }),
  /** Desk work: a new opt-in (form, verbal) or an opt-out the patient asked for in person. */
  'privacy.recordConsent': method({
    input: z.object({
      contactId: Id,
      status: z.enum(['opted_in', 'opted_out']),
      source: z.enum(['patient_wrote', 'form', 'desk', 'imported']),
      note: z.string().trim().max(500).optional(),
    }),
    output: ConsentSchema,
    roles: ['receptionist', 'admin'],
    audit: 'update',
  }),
  'privacy.getKeywords': method({ input: z.object({}), output: PrivacyKeywordsSchema, roles: ['admin'] }),
  'privacy.updateKeywords': method({ input: PrivacyKeywordsSchema, output: PrivacyKeywordsSchema, roles: ['admin'], audit: 'configure' }),
  'privacy.getSettings': method({ input: z.object({}), output: PrivacySettingsSchema, roles: ['receptionist', 'admin'] }),
  'privacy.updateSettings': method({ input: PrivacySettingsSchema, output: PrivacySettingsSchema, roles: ['admin'], audit: 'configure' }),
  /** The composer's check before sending: findings to highlight, and whether sending is blocked. Never audited (nothing stored). */
  'privacy.checkOutgoing': method({
    input: z.object({ text: z.string().max(4096) }),
    output: z.object({ findings: z.array(FindingSchema), mode: SendGuardModeSchema, blocked: z.boolean() }),
    roles: ['receptionist'],
  }),
  'privacy.requests.list': method({
    input: z.object({ state: z.enum(['open', 'done', 'all']).default('open'), contactId: Id.optional() }),
    output: z.array(PrivacyRequestSchema),
    roles: ['receptionist', 'admin'],
    audit: 'read',
  }),
  'privacy.requests.register': method({
    input: z.object({ contactId: Id, kind: RequestKindSchema, receivedAt: z.number().int().positive().optional(), note: z.string().trim().max(500).optional() }),
    output: PrivacyRequestSchema,
    roles: ['receptionist', 'admin'],
    audit: 'create',
  }),
  'privacy.requests.complete': method({
    input: z.object({ requestId: Id, outcome: z.string().trim().min(3).max(1000) }),
    output: PrivacyRequestSchema,
    roles: ['receptionist', 'admin'],
    audit: 'update',
  }),
  /** Everything about one patient as a zip (JSON, CSV, PDF, media) in the folder given; progress as `privacy.exportProgress`. */
  'privacy.export': method({
    input: z.object({ contactId: Id, destinationDir: z.string().min(1).max(1000), exportId: z.string().max(64).optional() }),
    output: ExportResultSchema,
    roles: ['admin'],
    audit: 'export',
  }),
  'privacy.legalHold.get': method({ input: z.object({ contactId: Id }), output: LegalHoldSchema.nullable(), roles: ['admin'], audit: 'read' }),
  'privacy.legalHold.set': method({ input: z.object({ contactId: Id, reason: Reason }), output: LegalHoldSchema, roles: ['admin'], audit: 'update' }),
  'privacy.legalHold.clear': method({ input: z.object({ contactId: Id, reason: Reason }), output: z.object({ cleared: z.boolean() }), roles: ['admin'], audit: 'update' }),
  'privacy.retention.get': method({
    input: z.object({}),
    output: z.object({ rules: z.array(RetentionRuleSchema), lastRun: RetentionRunSchema.nullable(), nextRunAt: z.number().int().nullable() }),
    roles: ['admin'],
  }),
  'privacy.retention.update': method({
    input: z.object({
      rules: z
        .array(z.object({ kind: RetentionKindSchema, days: z.number().int().min(1).max(RETENTION_MAX_DAYS), legalMinimumDays: z.number().int().min(0).max(RETENTION_MAX_DAYS) }))
        .min(1)
        .max(4),
    }),
    output: z.array(RetentionRuleSchema),
    roles: ['admin'],
    audit: 'configure',
  }),
  /** What a run now would remove, per kind. */
  'privacy.retention.preview': method({ input: z.object({}), output: RetentionCountsSchema, roles: ['admin'] }),
  /** Runs the purge now (the daily job's work); its one audit entry carries the counts. */
  'privacy.retention.runNow': method({ input: z.object({}), output: RetentionRunSchema, roles: ['admin'] }),
} as const;

export const privacyEvents = {
  /** A patient asked for their data on WhatsApp (or a request was registered): admins' request list refreshes. */
  'privacy.requestReceived': z.object({ requestId: Id, kind: RequestKindSchema }),
  'privacy.consentChanged': z.object({ contactId: Id }),
  'privacy.exportProgress': z.object({ exportId: z.string(), phase: z.enum(['collect', 'json', 'csv', 'pdf', 'zip', 'write', 'done']), fraction: z.number().min(0).max(1) }),
  'privacy.retentionFinished': z.object({ runId: Id }),
} as const;
