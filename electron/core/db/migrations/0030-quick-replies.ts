import type { Database } from '../types';

/**
 * Schema version 30: saved quick replies, moved out of the renderer's localStorage.
 *
 * The desk saves whatever is in the composer as a quick reply, which is often a reply to one
 * patient (a name, a result). In localStorage that lay in Chromium's plaintext LevelDB beside the
 * encrypted database; here it is encrypted with everything else and `secure_delete` scrubs a
 * removed one.
 *
 * - One list for the clinic's desk, as before (it was per computer, shared by whoever sat there);
 *   `created_by` records who saved each one.
 * - `text` is unique so saving the same phrase twice, or the one-time move from localStorage being
 *   retried after an interruption, never makes doubles.
 * - The length ceiling is a CHECK as well as the RPC schema's limit: a bug in a caller cannot
 *   store an unbounded text. The count limit (200) is enforced by the repository, in the same
 *   transaction as the insert, so it can change without rebuilding the table.
 */
export const version = 30;
export const name = 'quick-replies';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE quick_replies (
      id INTEGER PRIMARY KEY,
      text TEXT NOT NULL UNIQUE CHECK (length(text) BETWEEN 1 AND 4096),
      position INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX quick_replies_by_position ON quick_replies (position, id);
  `);
}
