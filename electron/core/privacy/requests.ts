import { CodedError } from '../../../shared/errors';
import type { PrivacyRequest, RequestDueState, RequestKind } from '../../../shared/rpc';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

/** GDPR art. 12(3): an answer within one month; the register counts 30 days from receipt. */
export const REQUEST_DEADLINE_MS = 30 * 24 * 60 * 60_000;
const SOON_MS = 7 * 24 * 60 * 60_000;

interface RequestRow {
  id: number;
  contact_id: number;
  contact_name: string | null;
  kind: RequestKind;
  via: 'desk' | 'whatsapp';
  received_at: number;
  registered_by: string;
  due_at: number;
  note: string | null;
  done_at: number | null;
  done_by: string | null;
  outcome: string | null;
}

export function dueState(dueAt: number, doneAt: number | null, now: number): RequestDueState {
  if (doneAt !== null) return 'done';
  if (now > dueAt) return 'overdue';
  return dueAt - now <= SOON_MS ? 'soon' : 'due';
}

const SELECT = `SELECT r.*, coalesce(k.display_name, k.profile_name, k.username) AS contact_name
                  FROM privacy_requests r LEFT JOIN contacts k ON k.id = r.contact_id`;

function toRequest(r: RequestRow, now: number): PrivacyRequest {
  return {
    id: r.id,
    contactId: r.contact_id,
    contactName: r.contact_name,
    kind: r.kind,
    via: r.via,
    receivedAt: r.received_at,
    registeredBy: r.registered_by,
    dueAt: r.due_at,
    dueState: dueState(r.due_at, r.done_at, now),
    note: r.note,
    doneAt: r.done_at,
    doneBy: r.done_by,
    outcome: r.outcome,
  };
}

export function getRequest(db: Database, id: number, now: number): PrivacyRequest | null {
  const row = stmt(db, `${SELECT} WHERE r.id = ?`).get(id) as RequestRow | undefined;
  return row ? toRequest(row, now) : null;
}

export function registerRequest(
  db: Database,
  p: { contactId: number; kind: RequestKind; via: 'desk' | 'whatsapp'; by: string; receivedAt: number; note?: string | null; now: number },
): PrivacyRequest {
  if (!stmt(db, 'SELECT 1 FROM contacts WHERE id = ?').get(p.contactId)) throw new CodedError('NOT_FOUND', `There is no contact ${p.contactId}.`);
  if (p.receivedAt > p.now + 60_000) throw new CodedError('VALIDATION_FAILED', 'A request cannot be received in the future.');
  const id = stmt(db, 'INSERT INTO privacy_requests (contact_id, kind, received_at, via, registered_by, due_at, note) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    p.contactId,
    p.kind,
    p.receivedAt,
    p.via,
    p.by,
    p.receivedAt + REQUEST_DEADLINE_MS,
    p.note ?? null,
  ).lastInsertRowid;
  return getRequest(db, Number(id), p.now)!;
}

/** An access request the patient already has open (a second INZAGE is not a second request). */
export function openRequestOf(db: Database, contactId: number, kind: RequestKind): number | null {
  const row = stmt(db, 'SELECT id FROM privacy_requests WHERE contact_id = ? AND kind = ? AND done_at IS NULL LIMIT 1').get(contactId, kind) as { id: number } | undefined;
  return row?.id ?? null;
}

export function listRequests(db: Database, p: { state: 'open' | 'done' | 'all'; contactId?: number; now: number }): PrivacyRequest[] {
  const where = [p.state === 'open' ? 'r.done_at IS NULL' : p.state === 'done' ? 'r.done_at IS NOT NULL' : '1', p.contactId ? 'r.contact_id = ?' : '1'].join(' AND ');
  const rows = stmt(db, `${SELECT} WHERE ${where} ORDER BY r.done_at IS NOT NULL, r.due_at, r.id LIMIT 1000`).all(...(p.contactId ? [p.contactId] : [])) as RequestRow[];
  return rows.map((r) => toRequest(r, p.now));
}

export function completeRequest(db: Database, p: { id: number; by: string; outcome: string; now: number }): PrivacyRequest {
  const existing = getRequest(db, p.id, p.now);
  if (!existing) throw new CodedError('NOT_FOUND', `There is no request ${p.id}.`);
  if (existing.doneAt !== null) throw new CodedError('CONFLICT', 'This request was marked done already.');
  stmt(db, 'UPDATE privacy_requests SET done_at = ?, done_by = ?, outcome = ? WHERE id = ?').run(p.now, p.by, p.outcome, p.id);
  return getRequest(db, p.id, p.now)!;
}
