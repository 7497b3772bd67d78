import { stmt } from '../statements';
import type { Database } from '../types';

/**
 * The clinic's own reaction to a patient's message: one row per message (`from_business = 1`) in
 * `reactions`, shared with the reactions Meta reports, carrying the state of the desk's send.
 * The row holds what the desk wants the patient to see; the outbox job reads it when it sends.
 * See migration 0100.
 */

export type ReactionSendState = 'pending' | 'sent' | 'failed';

export interface ClinicReaction {
  id: number;
  emoji: string;
  status: ReactionSendState | null;
}

/** Where a reaction is shown: the target message and its conversation (for the UI's refresh). */
export interface ReactionChange {
  conversationId: number;
  messageId: number;
  targetWamid: string;
}

export function clinicReaction(db: Database, targetWamid: string): ClinicReaction | null {
  return (
    (stmt(db, 'SELECT id, emoji, status FROM reactions WHERE target_wamid = ? AND from_business = 1').get(targetWamid) as ClinicReaction | undefined) ?? null
  );
}

/** The desk's choice (an empty emoji removes it), pending until Meta accepts it. */
export function setClinicReaction(
  db: Database,
  r: { targetWamid: string; contactId: number; emoji: string; authorUserId: string | null; now: number },
): void {
  stmt(
    db,
    `INSERT INTO reactions (target_wamid, contact_id, from_business, emoji, reaction_wamid, reacted_at, status, status_at, author_user_id)
     VALUES (?, ?, 1, ?, NULL, ?, 'pending', ?, ?)
     ON CONFLICT (target_wamid, contact_id, from_business) DO UPDATE SET
       emoji = excluded.emoji, reacted_at = excluded.reacted_at, status = 'pending', status_at = excluded.status_at,
       error_code = NULL, error_title = NULL, author_user_id = excluded.author_user_id`,
  ).run(r.targetWamid, r.contactId, r.emoji, r.now, r.now, r.authorUserId);
}

function changeFor(db: Database, targetWamid: string): ReactionChange | null {
  return (
    (stmt(db, 'SELECT id AS messageId, conversation_id AS conversationId, wamid AS targetWamid FROM messages WHERE wamid = ?').get(targetWamid) as ReactionChange | undefined) ??
    null
  );
}

/**
 * Meta accepted the send of `emoji`: the reaction shows sent, unless the desk changed it since
 * (then the newer choice's own job is still to go, and it stays pending). A `failed` status
 * webhook that beat this answer applies now.
 */
export function markReactionSent(db: Database, p: { targetWamid: string; emoji: string; wamid: string; now: number }): ReactionChange | null {
  const changed = stmt(
    db,
    `UPDATE reactions SET reaction_wamid = ?, status = 'sent', status_at = ?, error_code = NULL, error_title = NULL
      WHERE target_wamid = ? AND from_business = 1 AND emoji = ? AND status IS NOT NULL`,
  ).run(p.wamid, p.now, p.targetWamid, p.emoji).changes;
  if (changed === 0) return null;
  const early = stmt(db, `SELECT error_code, error_title FROM message_statuses WHERE wamid = ? AND status = 'failed' AND applied_at IS NULL`).get(p.wamid) as
    | { error_code: number | null; error_title: string | null }
    | undefined;
  if (early) applyReactionStatus(db, { wamid: p.wamid, status: 'failed', errorCode: early.error_code, errorTitle: early.error_title, now: p.now });
  return changeFor(db, p.targetWamid);
}

/** The send failed for good (Meta refused it, or retries ran out): the reason shows on the bubble. */
export function markReactionFailed(db: Database, p: { targetWamid: string; code: number | null; title: string; now: number }): ReactionChange | null {
  stmt(
    db,
    `UPDATE reactions SET status = 'failed', status_at = ?, error_code = ?, error_title = ? WHERE target_wamid = ? AND from_business = 1 AND status = 'pending'`,
  ).run(p.now, p.code, p.title, p.targetWamid);
  return changeFor(db, p.targetWamid);
}

/**
 * A status webhook about a reaction the desk sent (matched by the send's wamid). Meta posts only
 * `sent` for reactions, or `failed` (131009: the message is too old, deleted, or not one the
 * patient sent); a failure shows on the bubble. Returns null when no clinic reaction has this wamid.
 */
export function applyReactionStatus(
  db: Database,
  s: { wamid: string; status: string; errorCode: number | null; errorTitle: string | null; now: number },
): ReactionChange | null {
  const row = stmt(db, `SELECT target_wamid FROM reactions WHERE reaction_wamid = ? AND from_business = 1 AND status IS NOT NULL`).get(s.wamid) as
    | { target_wamid: string }
    | undefined;
  if (!row) return null;
  stmt(db, 'UPDATE message_statuses SET applied_at = ? WHERE wamid = ? AND status = ?').run(s.now, s.wamid, s.status);
  if (s.status === 'failed') {
    stmt(db, `UPDATE reactions SET status = 'failed', status_at = ?, error_code = ?, error_title = ? WHERE reaction_wamid = ? AND from_business = 1`).run(
      s.now,
      s.errorCode,
      s.errorTitle ?? 'WhatsApp did not deliver this reaction.',
      s.wamid,
    );
  }
  return changeFor(db, row.target_wamid);
}
