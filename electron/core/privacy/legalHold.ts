import { CodedError } from '../../../shared/errors';
import type { LegalHold } from '../../../shared/rpc';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

/**
 * A legal hold keeps one patient's record whatever else asks for its removal: the medical-record
 * duty (WGBO 20 years, BGB §630f 10 years …) outranks an erasure request and the retention policy.
 * Set and lifted by an admin with a reason; both are in the audit log.
 */

export function isUnderLegalHold(db: Database, contactId: number): boolean {
  return stmt(db, 'SELECT 1 FROM legal_holds WHERE contact_id = ?').get(contactId) !== undefined;
}

export function getLegalHold(db: Database, contactId: number): LegalHold | null {
  const row = stmt(db, 'SELECT contact_id, reason, set_by, set_at FROM legal_holds WHERE contact_id = ?').get(contactId) as
    | { contact_id: number; reason: string; set_by: string; set_at: number }
    | undefined;
  return row ? { contactId: row.contact_id, reason: row.reason, setBy: row.set_by, setAt: row.set_at } : null;
}

export function setLegalHold(db: Database, p: { contactId: number; reason: string; by: string; now: number }): LegalHold {
  if (!stmt(db, 'SELECT 1 FROM contacts WHERE id = ?').get(p.contactId)) throw new CodedError('NOT_FOUND', `There is no contact ${p.contactId}.`);
  stmt(db, 'INSERT INTO legal_holds (contact_id, reason, set_by, set_at) VALUES (?, ?, ?, ?) ON CONFLICT (contact_id) DO UPDATE SET reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at').run(
    p.contactId,
    p.reason,
    p.by,
    p.now,
  );
  return getLegalHold(db, p.contactId)!;
}

export function clearLegalHold(db: Database, contactId: number): boolean {
  return stmt(db, 'DELETE FROM legal_holds WHERE contact_id = ?').run(contactId).changes > 0;
}

/** Erasure's gate: refuses with the hold's reason. */
export function assertNoLegalHold(db: Database, contactId: number): void {
  const hold = getLegalHold(db, contactId);
  if (hold) {
    throw new CodedError(
      'LEGAL_HOLD',
      // The reason stays out of the message: an admin typed it, and messages never carry patient data.
      `This patient is under a legal hold (set ${new Date(hold.setAt).toISOString().slice(0, 10)}; the reason is in their privacy panel), so their record cannot be erased. An admin can lift the hold once the duty to keep the record has ended.`,
    );
  }
}
