import { z } from 'zod';
import { CodedError } from '../../../../shared/errors';
import { stmt } from '../statements';
import type { Database } from '../types';

export interface ContactRow {
  id: number;
  wa_id: string | null;
  user_id: string | null;
  parent_user_id: string | null;
  username: string | null;
  profile_name: string | null;
  display_name: string | null;
  notes: string;
  created_at: number;
  updated_at: number;
}

/** What a webhook tells us about a sender. Either id may be missing, never both. */
export interface ContactIdentity {
  waId: string | null;
  userId: string | null;
  parentUserId?: string | null;
  profileName?: string | null;
  username?: string | null;
}

export function getContact(db: Database, id: number): ContactRow | null {
  return (stmt(db, 'SELECT * FROM contacts WHERE id = ?').get(id) as ContactRow | undefined) ?? null;
}

export function findContactByWaId(db: Database, waId: string): ContactRow | null {
  return (stmt(db, 'SELECT * FROM contacts WHERE wa_id = ?').get(waId) as ContactRow | undefined) ?? null;
}

export function findContactByUserId(db: Database, userId: string): ContactRow | null {
  return (stmt(db, 'SELECT * FROM contacts WHERE user_id = ?').get(userId) as ContactRow | undefined) ?? null;
}

/**
 * Finds or creates the contact a webhook speaks of, and refreshes what Meta tells us (profile
 * name, username, ids). The business-scoped user id is the durable key when present: a phone
 * number can change hands, a BSUID cannot. Returns the contact id and whether anything changed.
 */
export function upsertContactFromWebhook(db: Database, who: ContactIdentity, now: number): { id: number; changed: boolean } {
  if (!who.waId && !who.userId) throw new CodedError('BAD_REQUEST', 'A contact needs a wa_id or a business-scoped user id.');
  const byUser = who.userId ? findContactByUserId(db, who.userId) : null;
  const byWa = who.waId ? findContactByWaId(db, who.waId) : null;
  let row = byUser ?? byWa;
  if (!byUser && byWa && who.userId && byWa.user_id && byWa.user_id !== who.userId) {
    // The number now speaks with another BSUID (a recycled or changed number): a different
    // person. The old contact keeps its BSUID and history; the number moves to the new one.
    stmt(db, 'UPDATE contacts SET wa_id = NULL, updated_at = ? WHERE id = ?').run(now, byWa.id);
    row = null;
  }
  if (!row) {
    const id = Number(
      stmt(
        db,
        `INSERT INTO contacts (wa_id, user_id, parent_user_id, username, profile_name, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(who.waId, who.userId, who.parentUserId ?? null, who.username ?? null, who.profileName ?? null, now, now).lastInsertRowid,
    );
    return { id, changed: true };
  }
  let waId = row.wa_id;
  let userId = row.user_id;
  if (who.userId && !userId && row === byWa) userId = who.userId;
  if (who.waId && waId !== who.waId) {
    if (!byWa) waId = who.waId;
    else if (byWa.id !== row.id && byWa.user_id && byWa.user_id !== who.userId) {
      stmt(db, 'UPDATE contacts SET wa_id = NULL, updated_at = ? WHERE id = ?').run(now, byWa.id);
      waId = who.waId;
    }
    // Otherwise the number sits on an older record without a BSUID; we leave both as they are
    // rather than merge two patients' histories on a guess.
  }
  const next = {
    wa_id: waId,
    user_id: userId,
    parent_user_id: who.parentUserId ?? row.parent_user_id,
    username: who.username ?? row.username,
    profile_name: who.profileName ?? row.profile_name,
  };
  const changed =
    next.wa_id !== row.wa_id ||
    next.user_id !== row.user_id ||
    next.parent_user_id !== row.parent_user_id ||
    next.username !== row.username ||
    next.profile_name !== row.profile_name;
  if (changed) {
    stmt(
      db,
      'UPDATE contacts SET wa_id = ?, user_id = ?, parent_user_id = ?, username = ?, profile_name = ?, updated_at = ? WHERE id = ?',
    ).run(next.wa_id, next.user_id, next.parent_user_id, next.username, next.profile_name, now, row.id);
    row = { ...row, ...next };
  }
  return { id: row.id, changed };
}

/** What a `system` message says the sender is called now, and the BSUIDs it had before. */
export interface IdentityUpdate {
  previousUserId: string | null;
  previousParentUserId: string | null;
  waId: string | null;
  userId: string | null;
  parentUserId: string | null;
}

/**
 * The contact an identity-change message speaks of: by the BSUID it names as previous, then by the
 * sender's own ids (the old number sends a number change), and last by the new ids (the change was
 * applied already, e.g. on a redelivery after a crash). Null: nobody we know.
 */
export function findContactForIdentityUpdate(db: Database, sender: { waId: string | null; userId: string | null }, update: IdentityUpdate): ContactRow | null {
  const byUser = (id: string | null) => (id ? findContactByUserId(db, id) : null);
  const byWa = (id: string | null) => (id ? findContactByWaId(db, id) : null);
  return byUser(update.previousUserId) ?? byUser(sender.userId) ?? byWa(sender.waId) ?? byUser(update.userId) ?? byWa(update.waId);
}

/**
 * Moves a contact to the ids Meta announced (new number, new BSUID), so the patient's next message
 * lands in the same thread and replies go to the new address. An id another contact already holds is
 * left where it is rather than merging two histories on a guess; `conflicts` counts those.
 */
export function applyIdentityUpdate(db: Database, contactId: number, update: IdentityUpdate, now: number): { changed: boolean; conflicts: number } {
  const row = getContact(db, contactId);
  if (!row) throw new CodedError('NOT_FOUND', `Contact ${contactId} does not exist.`);
  let conflicts = 0;
  const claim = (current: string | null, wanted: string | null, holder: ContactRow | null): string | null => {
    if (!wanted || wanted === current) return current;
    if (holder && holder.id !== contactId) {
      conflicts += 1;
      return current;
    }
    return wanted;
  };
  const waId = claim(row.wa_id, update.waId, update.waId ? findContactByWaId(db, update.waId) : null);
  const userId = claim(row.user_id, update.userId, update.userId ? findContactByUserId(db, update.userId) : null);
  const parentUserId = update.parentUserId ?? row.parent_user_id;
  if (waId === row.wa_id && userId === row.user_id && parentUserId === row.parent_user_id) return { changed: false, conflicts };
  stmt(db, 'UPDATE contacts SET wa_id = ?, user_id = ?, parent_user_id = ?, updated_at = ? WHERE id = ?').run(waId, userId, parentUserId, now, contactId);
  return { changed: true, conflicts };
}

/** What the clinic may edit about a contact. */
export const ContactUpdateSchema = z.object({
  displayName: z.string().trim().max(200).nullable().optional(),
  notes: z.string().max(20_000).optional(),
});
export type ContactUpdate = z.infer<typeof ContactUpdateSchema>;

export function updateContact(db: Database, id: number, update: ContactUpdate, now: number): ContactRow {
  const patch = ContactUpdateSchema.parse(update);
  const row = getContact(db, id);
  if (!row) throw new CodedError('NOT_FOUND', `Contact ${id} does not exist.`);
  const displayName = patch.displayName === undefined ? row.display_name : patch.displayName || null;
  const notes = patch.notes ?? row.notes;
  stmt(db, 'UPDATE contacts SET display_name = ?, notes = ?, updated_at = ? WHERE id = ?').run(displayName, notes, now, id);
  return { ...row, display_name: displayName, notes, updated_at: now };
}

export interface ContactSearchHit {
  contactId: number;
  conversationId: number | null;
  displayName: string | null;
  profileName: string | null;
  waId: string | null;
  matched: 'name' | 'number' | 'notes';
  /** For a notes match: the text around the first hit, as [before, hit, after]. */
  notes: [string, string, string] | null;
}

/**
 * The digits a typed phone number stands for, in the form they appear inside a WhatsApp id
 * (country code and number, no `+`): `+31 6-1234 5678`, `0031 612345678` and `06 12345678` all
 * become a run that `31612345678` contains. Null when the query is not number-like.
 */
export function phoneDigits(query: string): string | null {
  if (!/^[\d\s+\-().\/]+$/.test(query)) return null;
  const digits = query.replace(/\D/g, '').replace(/^0+/, '');
  return digits.length >= 3 ? digits : null;
}

const NOTES_CONTEXT = 40;

/**
 * Contacts whose saved name, WhatsApp profile name, number or notes match; the most recently active
 * first. A scan of the contacts table (tens of thousands of rows at most), so it needs no index.
 */
export function searchContacts(db: Database, query: string, limit: number): ContactSearchHit[] {
  const q = query.trim().normalize('NFC');
  if (!q) return [];
  const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const digits = phoneDigits(q) ?? '';
  const rows = stmt(
    db,
    `SELECT c.id, c.wa_id, c.display_name, c.profile_name, c.notes, v.id AS conversation_id
       FROM contacts c
       LEFT JOIN conversations v ON v.id = (SELECT id FROM conversations WHERE contact_id = c.id ORDER BY last_activity_at DESC, id DESC LIMIT 1)
      WHERE c.display_name LIKE @like ESCAPE '\\' OR c.profile_name LIKE @like ESCAPE '\\'
         OR (@digits <> '' AND instr(c.wa_id, @digits) > 0)
         OR c.notes LIKE @like ESCAPE '\\'
      ORDER BY v.last_activity_at IS NULL, v.last_activity_at DESC, c.id DESC
      LIMIT @limit`,
  ).all({ like, digits, limit }) as Array<Pick<ContactRow, 'id' | 'wa_id' | 'display_name' | 'profile_name' | 'notes'> & { conversation_id: number | null }>;
  const folded = q.toLocaleLowerCase();
  const has = (s: string | null): boolean => !!s && s.toLocaleLowerCase().includes(folded);
  return rows.map((r) => {
    const matched = has(r.display_name) || has(r.profile_name) ? 'name' : digits && r.wa_id?.includes(digits) ? 'number' : 'notes';
    let notes: ContactSearchHit['notes'] = null;
    if (matched === 'notes') {
      const at = Math.max(0, r.notes.toLocaleLowerCase().indexOf(folded));
      const start = Math.max(0, at - NOTES_CONTEXT);
      notes = [`${start > 0 ? '…' : ''}${r.notes.slice(start, at)}`, r.notes.slice(at, at + q.length), `${r.notes.slice(at + q.length, at + q.length + NOTES_CONTEXT)}${at + q.length + NOTES_CONTEXT < r.notes.length ? '…' : ''}`];
    }
    return { contactId: r.id, conversationId: r.conversation_id, displayName: r.display_name, profileName: r.profile_name, waId: r.wa_id, matched, notes };
  });
}
