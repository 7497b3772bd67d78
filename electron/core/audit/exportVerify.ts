import { createPublicKey, hash as sha256, verify as edVerify } from 'node:crypto';
import { z } from 'zod';
import { checkpointPayload } from '../../../shared/wire';
import { chainHash, entryHash, GENESIS_HASH, parsePruneReason, PRUNE_METHOD, type AuditRow } from './auditLog';

/**
 * An audit export's proof, and its verifier: pure (no keychain, no database), so the command
 * (`npm run audit -- verify-export FILE`) checks a file on any computer, and tests share it.
 *
 * The file carries the chosen entries in full and, for every other entry from the first up to a
 * checkpoint, the least that links the chain: a version-2 entry's digest, a version-1 entry's whole
 * row (those were hashed over their fields directly). The checkpoint of the head is signed by the
 * device key whose public half the file carries; its fingerprint is what the relay operator holds.
 * Once the log was pruned, the chain begins after the anchor instead of at entry 1: the first entry
 * must follow the anchor's hash, and the pruning's own entry, carried whole, must state that anchor.
 */
export const EXPORT_FORMAT = 'clinic-inbox/audit-export/v1';

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const ExportRowSchema = z.object({
  seq: z.number().int().positive(),
  at: z.number().int(),
  user_id: z.string(),
  display_name: z.string().nullable(),
  role: z.string(),
  session_id: z.string().nullable(),
  action: z.string(),
  method: z.string(),
  contact_ids: z.string(),
  origin: z.string(),
  outcome: z.string(),
  error_code: z.string().nullable(),
  reason: z.string().nullable(),
  hash_version: z.union([z.literal(1), z.literal(2)]),
  prev_hash: Hex64,
  hash: Hex64,
});
const DigestLinkSchema = z.tuple([z.number().int().positive(), Hex64]);

export const AuditExportSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  installationId: z.string(),
  applianceId: z.string().nullable(),
  exportedAt: z.number().int(),
  filter: z.record(z.string(), z.unknown()),
  /** Raw Ed25519 public key of the device, base64url (as the relay pinned it at enrolment). */
  signingPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** The chosen entries in full, oldest first. */
  entries: z.array(ExportRowSchema),
  /** Every other entry up to the checkpoint: `[seq, entryDigest]` for version 2, the full row for version 1. */
  chain: z.array(z.union([DigestLinkSchema, ExportRowSchema])),
  checkpoint: z
    .object({
      /** The id the signature binds (the relay's appliance id; the installation id when never paired). */
      signedFor: z.string(),
      seq: z.number().int().positive(),
      headHash: Hex64,
      at: z.number().int(),
      signature: z.string(),
    })
    .nullable(),
  /** Where the chain begins once entries past the audit policy were pruned (absent or null: at entry 1). */
  anchor: z.object({ throughSeq: z.number().int().positive(), throughHash: Hex64, recordSeq: z.number().int().positive() }).nullable().optional(),
  /** What the relay said when asked to witness the head at export time (not checkable offline). */
  witness: z.object({ ok: z.boolean().nullable(), witnessedSeq: z.number().int().nullable().optional(), reason: z.string().optional() }),
  /** The names the clinic knew the patients by at export time; a convenience, not covered by the proof. */
  contactNames: z.record(z.string(), z.string().nullable()),
});
export type AuditExport = z.infer<typeof AuditExportSchema>;
export type ExportRow = z.infer<typeof ExportRowSchema>;

export type ExportVerdict =
  | {
      ok: true;
      entries: number;
      checkpoint: { seq: number; at: number; headHash: string } | null;
      fingerprint: string;
      witness: AuditExport['witness'] | null;
    }
  | { ok: false; reason: string; brokenAt: number | null; fingerprint: string | null };

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** SHA-256 of the raw public key, in groups of four hex digits: what to read out to the relay operator. */
export function keyFingerprint(publicKeyRaw: string): string {
  const hex = sha256('sha256', Buffer.from(publicKeyRaw, 'base64url'), 'hex');
  return hex.match(/.{4}/g)!.join(' ');
}

/** Checks an export's text: its shape, every included entry, the chain through the checkpoint, and the signature. */
export function verifyExport(text: string): ExportVerdict {
  let parsed: AuditExport;
  try {
    const result = AuditExportSchema.safeParse(JSON.parse(text));
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return { ok: false, reason: `this is not a Clinic Inbox audit export (${issue.path.join('.') || 'file'}: ${issue.message})`, brokenAt: null, fingerprint: null };
    }
    parsed = result.data;
  } catch {
    return { ok: false, reason: 'this is not a Clinic Inbox audit export (not JSON)', brokenAt: null, fingerprint: null };
  }
  const fingerprint = keyFingerprint(parsed.signingPublicKey);
  const fail = (reason: string, brokenAt: number | null = null): ExportVerdict => ({ ok: false, reason, brokenAt, fingerprint });

  const bySeq = new Map<number, ExportRow | string>();
  const included = new Set<number>();
  for (const row of parsed.entries) {
    if (bySeq.has(row.seq)) return fail(`entry ${row.seq} appears twice`, row.seq);
    bySeq.set(row.seq, row);
    included.add(row.seq);
  }
  for (const link of parsed.chain) {
    const seq = Array.isArray(link) ? link[0] : link.seq;
    if (bySeq.has(seq)) return fail(`entry ${seq} appears twice`, seq);
    bySeq.set(seq, Array.isArray(link) ? link[1] : link);
  }

  const cp = parsed.checkpoint;
  if (!cp) {
    if (bySeq.size > 0) return fail('the export holds entries but no signed checkpoint');
    return { ok: true, entries: 0, checkpoint: null, fingerprint, witness: parsed.witness };
  }
  const expectedSigner = parsed.applianceId ?? parsed.installationId;
  if (cp.signedFor !== expectedSigner) return fail(`the checkpoint was signed for ${cp.signedFor}, not for this appliance (${expectedSigner})`);
  for (const seq of bySeq.keys()) if (seq > cp.seq) return fail(`entry ${seq} lies beyond the signed checkpoint (entry ${cp.seq})`, seq);

  const anchor = parsed.anchor ?? null;
  if (anchor) {
    const record = bySeq.get(anchor.recordSeq);
    const stated = typeof record === 'object' && record.method === PRUNE_METHOD ? parsePruneReason(record.reason) : null;
    if (!stated || stated.throughSeq !== anchor.throughSeq || stated.throughHash !== anchor.throughHash || anchor.recordSeq <= anchor.throughSeq) {
      return fail(`the pruning anchor (entries through ${anchor.throughSeq}) does not match the pruning entry ${anchor.recordSeq} in the chain`, anchor.throughSeq + 1);
    }
  }
  for (const seq of bySeq.keys()) if (anchor && seq <= anchor.throughSeq) return fail(`entry ${seq} lies behind the pruning anchor (entry ${anchor.throughSeq})`, seq);
  let prev = anchor?.throughHash ?? GENESIS_HASH;
  for (let seq = (anchor?.throughSeq ?? 0) + 1; seq <= cp.seq; seq += 1) {
    const item = bySeq.get(seq);
    if (item === undefined) return fail(`entry ${seq} is missing from the export`, seq);
    if (typeof item === 'string') {
      prev = chainHash(prev, item);
      continue;
    }
    if (item.prev_hash !== prev) return fail(`entry ${seq} does not follow entry ${seq - 1} (it or an entry before it was altered)`, seq);
    if (entryHash(item as AuditRow) !== item.hash) return fail(`entry ${seq} was altered: its fields no longer match its hash`, seq);
    prev = item.hash;
  }
  if (prev !== cp.headHash) return fail(`the chain does not end in the signed head (entry ${cp.seq}): an entry's digest was altered or removed`, cp.seq);

  let signed = false;
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(parsed.signingPublicKey, 'base64url')]), format: 'der', type: 'spki' });
    const payload = Buffer.from(checkpointPayload(cp.signedFor, { seq: cp.seq, headHash: cp.headHash, at: cp.at }), 'utf8');
    signed = edVerify(null, payload, key, Buffer.from(cp.signature, 'base64url'));
  } catch {
    signed = false;
  }
  if (!signed) return fail(`the checkpoint's signature (entry ${cp.seq}) does not verify with the device key in the file`, cp.seq);
  return { ok: true, entries: included.size, checkpoint: { seq: cp.seq, at: cp.at, headHash: cp.headHash }, fingerprint, witness: parsed.witness };
}
