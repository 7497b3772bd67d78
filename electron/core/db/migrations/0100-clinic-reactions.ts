import type { Database } from '../types';

/**
 * Schema version 100: the clinic's own reactions, sent from the desk.
 *
 * A reaction the receptionist sends is kept in `reactions` like a patient's (one row per message
 * per side, `from_business = 1`, so a change replaces it and an empty emoji is a removal), with
 * the state of its send beside it: `status` is `pending` until Meta accepts it, then `sent`, or
 * `failed` with Meta's code and title. NULL for reactions Meta told us about (the patient's, and
 * echoes of ones sent from the clinic's phone). The row holds the emoji the desk wants the patient
 * to see; the outbox job reads it when it sends, so a change made while a send is queued goes out
 * once, as the latest choice. `reaction_wamid` (the send's id from Meta) is indexed because a
 * `failed` status webhook about a reaction is matched by it.
 */
export const version = 100;
export const name = 'clinic-reactions';

export function up(db: Database): void {
  db.exec(`
    ALTER TABLE reactions ADD COLUMN status TEXT CHECK (status IS NULL OR status IN ('pending', 'sent', 'failed'));
    ALTER TABLE reactions ADD COLUMN status_at INTEGER;
    ALTER TABLE reactions ADD COLUMN error_code INTEGER;
    ALTER TABLE reactions ADD COLUMN error_title TEXT;
    ALTER TABLE reactions ADD COLUMN author_user_id TEXT;
    CREATE INDEX reactions_by_reaction_wamid ON reactions (reaction_wamid) WHERE reaction_wamid IS NOT NULL;
  `);
}
