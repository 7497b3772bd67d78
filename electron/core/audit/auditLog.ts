import { createHash, sign as edSign, type KeyObject } from 'node:crypto';
import type { Checkpoint, SignedCheckpoint } from '../../../shared/wire';
import { checkpointPayload } from '../../../shared/wire';
import type { Database } from '../db/types';
import type { AuditRecord } from '../rpc/dispatch';

export const GENESIS_HASH = '0'.repeat(64);

interface AuditRowAll {
  seq: number;
  at: number;
  user_id: string;
  role: string;
  action: string;
  method: string;
  contact_ids: string;
  origin: string;
  outcome: string;
  error_code: string | null;
  reason: string | null;
  display_name: string | null;
  session_id: string | null;
  hash_version: number;
  prev_hash: string;
  hash: string;
}

export type AuditRow = AuditRowFields & { hash: string };
type AuditRowFields = Omit<AuditRowAll, 'hash'>;

/**
 * The digest of one version-2 entry's fields, in a fixed order. The chain links these digests, so
 * an export can leave an entry out and still prove the chain with the entry's digest alone.
 */
export function entryDigest(row: AuditRowFields): string {
  const body = JSON.stringify([
    row.seq,
    row.at,
    row.user_id,
    row.display_name,
    row.role,
    row.session_id,
    row.action,
    row.method,
    row.contact_ids,
    row.origin,
    row.outcome,
    row.error_code,
    row.reason,
  ]);
  return createHash('sha256').update(body).digest('hex');
}

/** Links an entry to the one before: version 2 over its digest (see `entryDigest`). */
export function chainHash(prevHash: string, digest: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(digest).digest('hex');
}

/**
 * The hash of one entry covers every field and the previous hash. Version 1 (entries written
 * before accounts existed) hashed the fields directly; they keep verifying as they were written.
 */
export function entryHash(row: AuditRowFields): string {
  if (row.hash_version === 2) return chainHash(row.prev_hash, entryDigest(row));
  const body = JSON.stringify([
    row.seq,
    row.at,
    row.user_id,
    row.role,
    row.action,
    row.method,
    row.contact_ids,
    row.origin,
    row.outcome,
    row.error_code,
    row.reason,
  ]);
  return createHash('sha256').update(row.prev_hash).update('\n').update(body).digest('hex');
}

/** Appends one entry, chained to the current head, in its own immediate transaction. */
export function appendAudit(db: Database, record: AuditRecord, at: number): { seq: number; hash: string } {
  const head = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const insert = db.prepare(
    `INSERT INTO audit_log (seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason, hash_version, prev_hash, hash)
     VALUES (@seq, @at, @user_id, @display_name, @role, @session_id, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, @hash_version, @prev_hash, @hash)`,
  );
  const run = db.transaction(() => {
    const last = head.get() as { seq: number; hash: string } | undefined;
    const row: AuditRowFields = {
      seq: (last?.seq ?? 0) + 1,
      at,
      user_id: record.userId,
      display_name: record.displayName,
      role: record.role,
      session_id: record.sessionId,
      action: record.action,
      method: record.method,
      contact_ids: JSON.stringify([...record.contactIds].sort((a, b) => a - b)),
      origin: record.origin,
      outcome: record.outcome,
      error_code: record.errorCode ?? null,
      reason: record.reason ?? null,
      hash_version: 2,
      prev_hash: last?.hash ?? GENESIS_HASH,
    };
    const hash = entryHash(row);
    insert.run({ ...row, hash });
    return { seq: row.seq, hash };
  });
  return run.immediate();
}

export type ChainVerdict =
  | { ok: true; entries: number; head: { seq: number; hash: string } | null }
  | { ok: false; entries: number; brokenAt: number; reason: string };

/** Walks the whole chain: sequence without gaps, every prev_hash and every hash recomputed. */
export function verifyAuditChain(db: Database): ChainVerdict {
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let entries = 0;
  for (const row of db.prepare('SELECT * FROM audit_log ORDER BY seq').iterate() as IterableIterator<AuditRow>) {
    entries += 1;
    if (row.seq !== expectedSeq) return { ok: false, entries, brokenAt: expectedSeq, reason: `entry ${expectedSeq} is missing` };
    if (row.prev_hash !== prev) return { ok: false, entries, brokenAt: row.seq, reason: `entry ${row.seq} does not follow entry ${row.seq - 1}` };
    if (entryHash(row) !== row.hash) return { ok: false, entries, brokenAt: row.seq, reason: `entry ${row.seq} was altered` };
    prev = row.hash;
    expectedSeq += 1;
  }
  return { ok: true, entries, head: entries === 0 ? null : { seq: expectedSeq - 1, hash: prev } };
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

/**
 * Compares the local log with the checkpoint the relay holds as an outside witness. The local log
 * must still contain the witnessed entry with the same hash: a shorter log means the tail was
 * deleted, another hash means history was rewritten.
 */
export function compareWithWitness(db: Database, witnessed: SignedCheckpoint | null): WitnessVerdict {
  if (!witnessed) return { ok: true, witnessedSeq: null };
  const { seq, headHash } = witnessed.checkpoint;
  const row = db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(seq) as { hash: string } | undefined;
  if (!row) return { ok: false, reason: `the relay witnessed entry ${seq}, which is no longer in the local log (entries were removed)` };
  if (row.hash !== headHash) return { ok: false, reason: `entry ${seq} differs from what the relay witnessed (history was rewritten)` };
  return { ok: true, witnessedSeq: seq };
}
