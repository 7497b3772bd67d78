import { z } from 'zod';
import { AuditActionSchema, Cursor, Id, Limit, method } from './common';

/** The auditor's desk: the tamper-evident log, its reports and exports that verify elsewhere. */

export const AuditVerdictSchema = z.object({
  /** The local hash chain: every entry present, in order, unaltered. */
  chain: z.union([
    z.object({
      ok: z.literal(true),
      entries: z.number().int(),
      headSeq: z.number().int().nullable(),
      /** The last entry the retention policy pruned; the chain is proven from the entry after it. */
      prunedThrough: z.number().int().nullable(),
    }),
    z.object({ ok: z.literal(false), entries: z.number().int(), brokenAt: z.number().int(), reason: z.string() }),
  ]),
  /** The outside witness: the relay's latest signed checkpoint still matches the local log. */
  witness: z.union([
    z.object({ ok: z.literal(true), witnessedSeq: z.number().int().nullable() }),
    z.object({ ok: z.literal(false), reason: z.string() }),
    z.object({ ok: z.literal(null), reason: z.string() }),
  ]),
});
export type AuditVerdict = z.infer<typeof AuditVerdictSchema>;


/** One audit entry as the auditor's screen shows it: never message text, never a secret. */
export const AuditEntryViewSchema = z.object({
  seq: z.number().int(),
  at: z.number().int(),
  userId: z.string(),
  displayName: z.string().nullable(),
  /** The roles the user held at that moment. */
  roles: z.array(z.string()),
  sessionId: z.string().nullable(),
  action: z.string(),
  method: z.string(),
  /** The patients concerned, by id and (for the auditor) the name the clinic knows them by. */
  contacts: z.array(z.object({ id: Id, name: z.string().nullable() })),
  origin: z.string(),
  outcome: z.enum(['ok', 'denied', 'error']),
  errorCode: z.string().nullable(),
  reason: z.string().nullable(),
});
export type AuditEntryView = z.infer<typeof AuditEntryViewSchema>;

/** Every field optional; `from`/`to` in ms, `to` exclusive. */
export const AuditFilterSchema = z.object({
  userId: z.string().max(100).optional(),
  sessionId: z.string().max(100).optional(),
  contactId: Id.optional(),
  action: AuditActionSchema.optional(),
  from: z.number().int().nonnegative().optional(),
  to: z.number().int().nonnegative().optional(),
});
export type AuditFilter = z.infer<typeof AuditFilterSchema>;

export const auditMethods = {
  'audit.verify': method({
    input: z.object({
      /** Also sign the current head, have the relay witness it, and compare with what it holds. */
      withRelayWitness: z.boolean().default(true),
    }),
    output: AuditVerdictSchema,
    roles: ['auditor', 'admin'],
    audit: 'read',
  }),
  /** Newest first. "Who accessed this patient" is `contactId`; "what did this user touch" is `userId` + a time range. */
  'audit.query': method({
    input: z.object({ filter: AuditFilterSchema.default({}), cursor: Cursor.optional(), limit: Limit.default(100) }),
    output: z.object({ items: z.array(AuditEntryViewSchema), nextCursor: Cursor.nullable() }),
    roles: ['auditor'],
  }),
  /** Finds patients by name or number for the auditor's filter (names only; never message text). */
  'audit.findPatients': method({
    input: z.object({ query: z.string().trim().min(1).max(100) }),
    output: z.array(z.object({ contactId: Id, name: z.string().nullable() })).max(20),
    roles: ['auditor'],
    audit: 'read',
  }),
  /**
   * A filtered view as CSV and as JSON, the JSON carrying the proof: the chain's digests up to a
   * checkpoint signed by the device key (whose public half it carries) and what the relay witnessed.
   * `npm run audit -- verify-export FILE` checks it on any computer.
   */
  'audit.export': method({
    input: z.object({ filter: AuditFilterSchema.default({}) }),
    output: z.object({ fileBaseName: z.string(), json: z.string(), csv: z.string(), entries: z.number().int() }),
    roles: ['auditor'],
    audit: 'export',
  }),
} as const;
