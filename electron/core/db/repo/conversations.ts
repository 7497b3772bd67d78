import { z } from 'zod';
import { CodedError } from '../../../../shared/errors';
import { maskPersonalData } from '../../privacy/detector';
import { stmt } from '../statements';
import type { Database } from '../types';
import { decodeCursor, encodeCursor, PageLimitSchema, splitPage } from './cursor';

export const ConversationStatusSchema = z.enum(['open', 'pending', 'resolved']);
export type ConversationStatus = z.infer<typeof ConversationStatusSchema>;

/** `all` is the working inbox: every conversation not resolved. */
export const ConversationFilterSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }),
  z.object({ kind: z.literal('unread') }),
  z.object({ kind: z.literal('assigned'), userId: z.string().min(1) }),
  z.object({ kind: z.literal('resolved') }),
]);
export type ConversationFilter = z.infer<typeof ConversationFilterSchema>;

export const ListConversationsSchema = z.object({
  filter: ConversationFilterSchema.default({ kind: 'all' }),
  limit: PageLimitSchema.default(50),
  cursor: z.string().nullish(),
});
export type ListConversationsInput = z.input<typeof ListConversationsSchema>;

/** The customer service window: free-form replies are allowed for 24 hours after the patient's last message. */
export const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface ConversationListItem {
  id: number;
  contactId: number;
  /** Clinic-edited name, else WhatsApp profile name, else username; null when Meta gave none. */
  contactName: string | null;
  waId: string | null;
  userId: string | null;
  phoneNumberId: string;
  status: ConversationStatus;
  assignedUserId: string | null;
  unreadCount: number;
  lastActivityAt: number;
  lastInboundAt: number | null;
  /** Until when a free-form reply is allowed; null or past: only templates. */
  windowClosesAt: number | null;
  lastMessage: { id: number; type: string; direction: 'inbound' | 'outbound'; preview: string | null; status: string } | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

interface ListRow {
  id: number;
  contact_id: number;
  phone_number_id: string;
  status: ConversationStatus;
  assigned_user_id: string | null;
  unread_count: number;
  last_activity_at: number;
  last_inbound_at: number | null;
  display_name: string | null;
  profile_name: string | null;
  username: string | null;
  wa_id: string | null;
  user_id: string | null;
  m_id: number | null;
  m_type: string | null;
  m_direction: 'inbound' | 'outbound' | null;
  m_preview: string | null;
  m_status: string | null;
}

const SELECT_LIST = `
  SELECT c.id, c.contact_id, c.phone_number_id, c.status, c.assigned_user_id, c.unread_count,
         c.last_activity_at, c.last_inbound_at,
         ct.display_name, ct.profile_name, ct.username, ct.wa_id, ct.user_id,
         m.id AS m_id, m.type AS m_type, m.direction AS m_direction, substr(m.text, 1, 200) AS m_preview, m.status AS m_status
  FROM conversations c
  JOIN contacts ct ON ct.id = c.contact_id
  LEFT JOIN messages m ON m.id = c.last_message_id`;
const KEYSET = '(c.last_activity_at, c.id) < (?, ?) ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?';

// Each WHERE repeats its partial index's condition word for word so SQLite can use that index.
const LIST_SQL = {
  all: `${SELECT_LIST} WHERE c.status <> 'resolved' AND ${KEYSET}`,
  unread: `${SELECT_LIST} WHERE c.unread_count > 0 AND ${KEYSET}`,
  assigned: `${SELECT_LIST} WHERE c.assigned_user_id IS NOT NULL AND c.assigned_user_id = ? AND c.status <> 'resolved' AND ${KEYSET}`,
  resolved: `${SELECT_LIST} WHERE c.status = 'resolved' AND ${KEYSET}`,
} as const;

function toItem(r: ListRow): ConversationListItem {
  return {
    id: r.id,
    contactId: r.contact_id,
    contactName: r.display_name ?? r.profile_name ?? r.username,
    waId: r.wa_id,
    userId: r.user_id,
    phoneNumberId: r.phone_number_id,
    status: r.status,
    assignedUserId: r.assigned_user_id,
    unreadCount: r.unread_count,
    lastActivityAt: r.last_activity_at,
    lastInboundAt: r.last_inbound_at,
    windowClosesAt: r.last_inbound_at === null ? null : r.last_inbound_at + SERVICE_WINDOW_MS,
    lastMessage:
      r.m_id === null
        ? null
        : {
            id: r.m_id,
            type: r.m_type ?? 'unsupported',
            direction: r.m_direction ?? 'inbound',
            // The inbox list is seen over a shoulder: identifiers in the preview are masked (the thread shows
            // them). Masked before the cut, so an identifier straddling 160 characters is not half shown.
            preview: r.m_preview === null ? null : maskPersonalData(r.m_preview).slice(0, 160),
            status: r.m_status ?? '',
          },
  };
}

/** The inbox, most recent activity first, one keyset page at a time. */
export function listConversations(db: Database, input: ListConversationsInput = {}): Page<ConversationListItem> {
  const { filter, limit, cursor } = ListConversationsSchema.parse(input);
  const [at, id] = decodeCursor(cursor);
  const rows = (
    filter.kind === 'assigned'
      ? stmt(db, LIST_SQL.assigned).all(filter.userId, at, id, limit + 1)
      : stmt(db, LIST_SQL[filter.kind]).all(at, id, limit + 1)
  ) as ListRow[];
  const { page, nextFrom } = splitPage(rows, limit);
  return { items: page.map(toItem), nextCursor: nextFrom ? encodeCursor(nextFrom.last_activity_at, nextFrom.id) : null };
}

export function getConversation(db: Database, id: number): ConversationListItem | null {
  const row = stmt(db, `${SELECT_LIST} WHERE c.id = ?`).get(id) as ListRow | undefined;
  return row ? toItem(row) : null;
}

/**
 * The conversation of a contact on one of the clinic's numbers, created on first contact. A new one
 * starts its activity at `activityAt` — the time the patient wrote, not when it reached this
 * computer: a backlog delivered after an outage must not show yesterday's message as "just now".
 */
export function getOrCreateConversation(
  db: Database,
  contactId: number,
  phoneNumberId: string,
  now: number,
  activityAt = now,
): { id: number; created: boolean } {
  const found = stmt(db, 'SELECT id FROM conversations WHERE contact_id = ? AND phone_number_id = ?').get(contactId, phoneNumberId) as
    | { id: number }
    | undefined;
  if (found) return { id: found.id, created: false };
  const id = Number(
    stmt(
      db,
      `INSERT INTO conversations (contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
    ).run(contactId, phoneNumberId, activityAt, now, now).lastInsertRowid,
  );
  return { id, created: true };
}

/**
 * A new message in a conversation: bumps its activity (never backwards: webhooks arrive out of
 * order), the 24-hour window for inbound ones, the unread count, and reopens a resolved one when
 * the patient writes again.
 */
export function noteMessage(
  db: Database,
  conversationId: number,
  m: { messageId: number; at: number; inbound: boolean; countsUnread: boolean },
  now: number,
): void {
  stmt(
    db,
    `UPDATE conversations SET
       last_message_id = CASE WHEN ? >= last_activity_at OR last_message_id IS NULL THEN ? ELSE last_message_id END,
       last_activity_at = max(last_activity_at, ?),
       last_inbound_at = CASE WHEN ? THEN max(coalesce(last_inbound_at, 0), ?) ELSE last_inbound_at END,
       unread_count = unread_count + ?,
       status = CASE WHEN ? AND status = 'resolved' THEN 'open' ELSE status END,
       updated_at = ?
     WHERE id = ?`,
  ).run(m.at, m.messageId, m.at, m.inbound ? 1 : 0, m.at, m.countsUnread ? 1 : 0, m.inbound ? 1 : 0, now, conversationId);
}

export function markConversationRead(db: Database, id: number, now: number): boolean {
  return stmt(db, 'UPDATE conversations SET unread_count = 0, updated_at = ? WHERE id = ? AND unread_count > 0').run(now, id).changes > 0;
}

export function setConversationStatus(db: Database, id: number, status: ConversationStatus, now: number): void {
  const s = ConversationStatusSchema.parse(status);
  if (stmt(db, 'UPDATE conversations SET status = ?, updated_at = ? WHERE id = ?').run(s, now, id).changes === 0) {
    throw new CodedError('NOT_FOUND', `Conversation ${id} does not exist.`);
  }
}

export function assignConversation(db: Database, id: number, userId: string | null, now: number): void {
  if (stmt(db, 'UPDATE conversations SET assigned_user_id = ?, updated_at = ? WHERE id = ?').run(userId, now, id).changes === 0) {
    throw new CodedError('NOT_FOUND', `Conversation ${id} does not exist.`);
  }
}

/** Marks a conversation unread again (one message, or as many as it had); false when it already was. */
export function markConversationUnread(db: Database, id: number, now: number): boolean {
  return stmt(db, 'UPDATE conversations SET unread_count = 1, updated_at = ? WHERE id = ? AND unread_count = 0').run(now, id).changes > 0;
}
