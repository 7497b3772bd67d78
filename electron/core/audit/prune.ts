// Pruning the audit log past its retention policy while the chain keeps verifying (migration 0140).
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import type { AuditRecord } from '../rpc/dispatch';
import { appendAudit } from './auditLog';
import { readAnchor, type AuditAnchor } from './anchor';
import { pruneReason, PRUNE_METHOD } from './chain';

export interface PrunePlan {
  /** The last entry this pruning may remove (the anchor's entry, or the current one when `count` is 0). */
  throughSeq: number;
  /** Entries it removes after the current anchor; 0: nothing to anchor. */
  count: number;
  /**
   * Entries older than the cut kept because of a legal hold: from the first one that concerns a
   * patient under hold on (the chain can only lose a prefix, so the pruning stops before it).
   */
  held: number;
  /** The plan stopped at `maxEntries`: more may be due after it. */
  more: boolean;
}

/**
 * What a pruning at `cutAt` may remove: the entries before the first one at or after the cut (seq
 * order, so an entry written under a clock set back is never taken with older ones), and before
 * the first one that concerns a patient under legal hold (who accessed a held record is part of
 * that record), at most `maxEntries` of them (the read stays short and an anchor covers a bounded
 * stretch on a large backlog). A read, outside any write transaction.
 */
export function pruneDue(db: Database, cutAt: number, maxEntries = Number.MAX_SAFE_INTEGER): PrunePlan {
  const after = readAnchor(db)?.throughSeq ?? 0;
  const head = (stmt(db, 'SELECT max(seq) FROM audit_log').pluck().get() as number | null) ?? after;
  const limit = Math.min(head, after + maxEntries);
  // `+at`: walk the table in seq order (over the due entries only), not the index on `at` (over every later one).
  const firstKept = stmt(db, 'SELECT seq FROM audit_log WHERE seq > ? AND seq <= ? AND +at >= ? ORDER BY seq LIMIT 1').pluck().get(after, limit, cutAt) as number | undefined;
  // Per patient under hold, its entries before the cut, off `audit_contacts`' key.
  const firstHeld = stmt(db, 'SELECT min(a.seq) FROM legal_holds h JOIN audit_contacts a ON a.contact_id = h.contact_id AND a.at < ? WHERE a.seq > ?').pluck().get(cutAt, after) as number | null;
  const natural = firstKept === undefined ? limit : firstKept - 1;
  const throughSeq = firstHeld !== null && firstHeld <= natural ? firstHeld - 1 : natural;
  // `+seq`: count off the index on `at` (the due entries), not the table from the held entry on.
  const held = firstHeld === null ? 0 : (stmt(db, 'SELECT count(*) FROM audit_log WHERE at < ? AND +seq >= ?').pluck().get(cutAt, firstHeld) as number);
  return { throughSeq, count: throughSeq - after, held, more: throughSeq === after + maxEntries && head > throughSeq };
}

export type AuditSubject = Pick<AuditRecord, 'userId' | 'displayName' | 'role' | 'sessionId' | 'origin'>;

/**
 * Writes the pruning's chained entry and the anchor in one transaction (synced: a pruning that the
 * run reports is never lost), before anything is deleted. Returns the anchor.
 */
export function anchorPrune(db: Database, p: { throughSeq: number; count: number; cutAt: number; at: number; by: AuditSubject }): AuditAnchor {
  return db.transaction(() => {
    const throughHash = stmt(db, 'SELECT hash FROM audit_log WHERE seq = ?').pluck().get(p.throughSeq) as string;
    const record = appendAudit(
      db,
      { ...p.by, action: 'delete', method: PRUNE_METHOD, contactIds: [], outcome: 'ok', reason: pruneReason({ throughSeq: p.throughSeq, throughHash, count: p.count, cutAt: p.cutAt }) },
      p.at,
    );
    const anchor: AuditAnchor = { throughSeq: p.throughSeq, throughHash, cutAt: p.cutAt, prunedAt: p.at, recordSeq: record.seq };
    stmt(db, 'INSERT INTO audit_anchor (through_seq, through_hash, cut_at, pruned_at, record_seq) VALUES (?, ?, ?, ?, ?)').run(
      anchor.throughSeq,
      anchor.throughHash,
      anchor.cutAt,
      anchor.prunedAt,
      anchor.recordSeq,
    );
    return anchor;
  }).immediate();
}

/**
 * Deletes up to `limit` entries behind the anchor, oldest first, with their rows in
 * `audit_contacts` (keyed by patient: each is deleted by its full key, not by a scan). The caller
 * runs it in a transaction and again until it returns 0; a run cut short resumes at the next one.
 */
export function deletePrunedBatch(db: Database, throughSeq: number, limit: number): number {
  const rows = stmt(db, 'SELECT seq, at, contact_ids FROM audit_log WHERE seq <= ? ORDER BY seq LIMIT ?').all(throughSeq, limit) as { seq: number; at: number; contact_ids: string }[];
  if (rows.length === 0) return 0;
  const contact = stmt(db, 'DELETE FROM audit_contacts WHERE contact_id IN (SELECT value FROM json_each(?)) AND at = ? AND seq = ?');
  for (const r of rows) if (r.contact_ids !== '[]') contact.run(r.contact_ids, r.at, r.seq);
  return stmt(db, 'DELETE FROM audit_log WHERE seq <= ?').run(rows.at(-1)!.seq).changes;
}
