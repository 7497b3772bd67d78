// The pruning anchor (migration 0140): where the chain begins once old entries were pruned, and
// the check that the anchor is the one the chain itself states.
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { GENESIS_START, parsePruneReason, PRUNE_METHOD, type ChainStart, type ChainVerdict } from './chain';

export interface AuditAnchor {
  throughSeq: number;
  throughHash: string;
  cutAt: number;
  prunedAt: number;
  recordSeq: number;
}

/** The latest anchor (anchors only move forward); null while nothing was ever pruned. */
export function readAnchor(db: Database): AuditAnchor | null {
  // A log at a schema before 0140 (the older migrations' tests verify theirs) was never pruned.
  if (stmt(db, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_anchor'`).get() === undefined) return null;
  const r = stmt(
    db,
    'SELECT through_seq AS throughSeq, through_hash AS throughHash, cut_at AS cutAt, pruned_at AS prunedAt, record_seq AS recordSeq FROM audit_anchor ORDER BY through_seq DESC LIMIT 1')
    .get() as AuditAnchor | undefined;
  return r ?? null;
}

/** Where a walk of the chain begins: after the anchor, or at entry 1 after the genesis hash. */
export function chainStartOf(anchor: AuditAnchor | null): ChainStart {
  return anchor ? { from: anchor.throughSeq + 1, prev: anchor.throughHash } : GENESIS_START;
}

/**
 * Completes a verdict of the chain walked from the anchor: the pruning's own entry, which the walk
 * has just proven unaltered, must state the anchor's seq and hash. An anchor changed afterwards, or
 * one written without a pruning (to skip entries), does not match it.
 */
export function checkAnchorRecord(db: Database, anchor: AuditAnchor | null, verdict: ChainVerdict): ChainVerdict {
  if (!anchor || !verdict.ok) return verdict;
  const record = stmt(db, 'SELECT method, reason FROM audit_log WHERE seq = ?').get(anchor.recordSeq) as { method: string; reason: string | null } | undefined;
  const stated = record?.method === PRUNE_METHOD ? parsePruneReason(record.reason) : null;
  if (!stated || stated.throughSeq !== anchor.throughSeq || stated.throughHash !== anchor.throughHash) {
    return { ok: false, entries: anchor.throughSeq + 1, brokenAt: anchor.throughSeq + 1, reason: `the pruning anchor (entries through ${anchor.throughSeq}) does not match the pruning entry ${anchor.recordSeq} in the chain` };
  }
  return { ...verdict, prunedThrough: anchor.throughSeq };
}

