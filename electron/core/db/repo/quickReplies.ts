import { CodedError } from '../../../../shared/errors';
import { QUICK_REPLIES_MAX, QUICK_REPLY_MAX_LENGTH } from '../../../../shared/rpc';
import { stmt } from '../statements';
import type { Database } from '../types';

export interface QuickReplyRow {
  id: number;
  text: string;
  position: number;
  created_by: string;
  created_at: number;
  updated_at: number;
}

/** The desk's saved replies in the order they were saved (oldest first, as the chips show them). */
export function listQuickReplies(db: Database): QuickReplyRow[] {
  return stmt(db, 'SELECT * FROM quick_replies ORDER BY position, id').all() as QuickReplyRow[];
}

export function countQuickReplies(db: Database): number {
  return (stmt(db, 'SELECT count(*) AS n FROM quick_replies').get() as { n: number }).n;
}

/**
 * Saves `text` at the end of the list. Saving a text that is already there returns that one
 * (`created: false`) and changes nothing, so a double click or a retried move from localStorage
 * makes no doubles. A full list is refused with `CONFLICT` before anything is written.
 */
export function addQuickReply(
  db: Database,
  input: { text: string; userId: string },
  now: number,
): { reply: QuickReplyRow; created: boolean } {
  const text = input.text.trim();
  if (text.length === 0 || text.length > QUICK_REPLY_MAX_LENGTH) {
    // The length, never the text: it may name a patient.
    throw new CodedError('VALIDATION_FAILED', `A quick reply must be 1 to ${QUICK_REPLY_MAX_LENGTH} characters long (this one has ${text.length}).`);
  }
  return db.transaction(() => {
    const existing = stmt(db, 'SELECT * FROM quick_replies WHERE text = ?').get(text) as QuickReplyRow | undefined;
    if (existing) return { reply: existing, created: false };
    if (countQuickReplies(db) >= QUICK_REPLIES_MAX) {
      throw new CodedError('CONFLICT', `There are already ${QUICK_REPLIES_MAX} quick replies; remove one before saving another.`);
    }
    const row = stmt(
      db,
      `INSERT INTO quick_replies (text, position, created_by, created_at, updated_at)
       VALUES (?, (SELECT coalesce(max(position), 0) + 1 FROM quick_replies), ?, ?, ?)
       RETURNING *`,
    ).get(text, input.userId, now, now) as QuickReplyRow;
    return { reply: row, created: true };
  })();
}

/** Removes one saved reply; `false` when it was already gone (removed in another window). */
export function removeQuickReply(db: Database, id: number): boolean {
  return stmt(db, 'DELETE FROM quick_replies WHERE id = ?').run(id).changes > 0;
}
