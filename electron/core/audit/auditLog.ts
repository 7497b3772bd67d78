import { sign as edSign, type KeyObject } from 'node:crypto';
import type { Checkpoint, SignedCheckpoint } from '../../../shared/wire';
import { checkpointPayload } from '../../../shared/wire';
import type { Database } from '../db/types';
import type { AuditRecord } from '../rpc/dispatch';
import { chainStartOf, checkAnchorRecord, readAnchor, type AuditAnchor } from './anchor';
import { entryHash, GENESIS_HASH, parsePruneReason, stitchChain, walkChainRange, type AuditRowFields, type ChainVerdict } from './chain';

export * from './chain';

type Append = (record: AuditRecord, at: number) => { seq: number; hash: string };
/** Prepared once per database: an entry is written on every audited call. */
const appenders = new WeakMap<Database, Append>();

function appenderFor(db: Database): Append {
  let append = appenders.get(db);
  if (append) return append;
  const head = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const insert = db.prepare(
    `INSERT INTO audit_log (seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason, hash_version, prev_hash, hash)
     VALUES (@seq, @at, @user_id, @display_name, @role, @session_id, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, @hash_version, @prev_hash, @hash)`,
  );
  // Derived data for the auditor's "who accessed this patient", written with the entry.
  const contact = db.prepare('INSERT OR IGNORE INTO audit_contacts (contact_id, at, seq) VALUES (?, ?, ?)');
  const run = db.transaction((record: AuditRecord, at: number) => {
    const last = head.get() as { seq: number; hash: string } | undefined;
    const contactIds = [...new Set(record.contactIds)].sort((a, b) => a - b);
    const row: AuditRowFields = {
      seq: (last?.seq ?? 0) + 1,
      at,
      user_id: record.userId,
      display_name: record.displayName,
      role: record.role,
      session_id: record.sessionId,
      action: record.action,
      method: record.method,
      contact_ids: JSON.stringify(contactIds),
      origin: record.origin,
      outcome: record.outcome,
      error_code: record.errorCode ?? null,
      reason: record.reason ?? null,
      hash_version: 2,
      prev_hash: last?.hash ?? GENESIS_HASH,
    };
    const hash = entryHash(row);
    insert.run({ ...row, hash });
    for (const id of contactIds) contact.run(id, at, row.seq);
    return { seq: row.seq, hash };
  });
  append = (record, at) => run.immediate(record, at);
  appenders.set(db, append);
  return append;
}

/** Appends one entry, chained to the current head, in its own immediate transaction (or the caller's). */
export function appendAudit(db: Database, record: AuditRecord, at: number): { seq: number; hash: string } {
  return appenderFor(db)(record, at);
}

/** The seq the chain is verified up to: the head now; null when the log is empty. */
export function chainHeadSeq(db: Database): number | null {
  const head = db.prepare('SELECT max(seq) FROM audit_log').pluck().get() as number | null;
  // A log of stray entries before 1 only still has entry 1 to miss.
  return head === null ? null : Math.max(head, 1);
}

/**
 * Walks the whole chain here, in one range up to the current head (see `verifyChain` for workers):
 * from entry 1, or from the entry after the pruning anchor, whose record the chain must hold.
 */
export function verifyAuditChain(db: Database): ChainVerdict {
  return db.transaction(() => {
    const anchor = readAnchor(db);
    const start = chainStartOf(anchor);
    const head = chainHeadSeq(db);
    return checkAnchorRecord(db, anchor, stitchChain(head === null ? [] : [walkChainRange(db, { from: start.from, to: head })], start));
  })();
}

/** Signs the current head with the device key and remembers it locally; null when the log is empty. */
export function makeCheckpoint(db: Database, applianceId: string, signingKey: KeyObject, at: number): SignedCheckpoint | null {
  const head = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as
    | { seq: number; hash: string }
    | undefined;
  if (!head) return null;
  const checkpoint: Checkpoint = { seq: head.seq, headHash: head.hash, at };
  const signature = edSign(null, Buffer.from(checkpointPayload(applianceId, checkpoint), 'utf8'), signingKey).toString('base64url');
  db.prepare(
    'INSERT INTO audit_checkpoints (seq, head_hash, at, signature) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING',
  ).run(checkpoint.seq, checkpoint.headHash, checkpoint.at, signature);
  return { checkpoint, signature };
}

export function markCheckpointWitnessed(db: Database, seq: number, at: number): void {
  db.prepare('UPDATE audit_checkpoints SET witnessed_at = ? WHERE seq = ?').run(at, seq);
}

export type WitnessVerdict =
  | { ok: true; witnessedSeq: number | null }
  | { ok: false; reason: string };

/** The earlier of the cut an anchor states and the one its chained pruning entry states. */
function prunedCut(db: Database, anchor: AuditAnchor): number {
  const reason = db.prepare('SELECT reason FROM audit_log WHERE seq = ?').pluck().get(anchor.recordSeq) as string | null | undefined;
  const stated = parsePruneReason(reason ?? null);
  return stated ? Math.min(stated.cutAt, anchor.cutAt) : anchor.cutAt;
}

/**
 * Compares the local log with the checkpoint the relay holds as an outside witness. The local log
 * must still contain the witnessed entry with the same hash: a shorter log means the tail was
 * deleted, another hash means history was rewritten.
 */
export function compareWithWitness(db: Database, witnessed: SignedCheckpoint | null): WitnessVerdict {
  if (!witnessed) return { ok: true, witnessedSeq: null };
  const { seq, headHash } = witnessed.checkpoint;
  // A witnessed entry the retention policy pruned: the anchor keeps the hash of the last one removed
  // (and the chain proves the anchor), so that one is still compared; one before it is simply older.
  const anchor = readAnchor(db);
  if (anchor && seq <= anchor.throughSeq) {
    if (seq === anchor.throughSeq && anchor.throughHash !== headHash) return { ok: false, reason: `entry ${seq} differs from what the relay witnessed (history was rewritten)` };
    // Entry seq + 1 was written after this checkpoint was made, and it was pruned as older than the
    // cut: so a checkpoint made at or after the cut, behind the anchor, means entries younger than
    // the policy were removed (a pruning forged to hide recent entries). The earlier of the cut the
    // anchor and the chained pruning entry state is taken, so editing the anchor alone gains nothing.
    if (seq < anchor.throughSeq && witnessed.checkpoint.at >= prunedCut(db, anchor)) {
      return { ok: false, reason: `the relay witnessed entry ${seq} at ${new Date(witnessed.checkpoint.at).toISOString()}, and entries written after it were pruned as older than the retention cut (entries were removed before their time)` };
    }
    return { ok: true, witnessedSeq: seq };
  }
  const row = db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(seq) as { hash: string } | undefined;
  if (!row) return { ok: false, reason: `the relay witnessed entry ${seq}, which is no longer in the local log (entries were removed)` };
  if (row.hash !== headHash) return { ok: false, reason: `entry ${seq} differs from what the relay witnessed (history was rewritten)` };
  return { ok: true, witnessedSeq: seq };
}
