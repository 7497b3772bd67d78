import { z } from 'zod';
import { stmt } from '../statements';
import type { Database } from '../types';
import type { Page } from './conversations';
import { decodeCursor, encodeCursor, PageLimitSchema, splitPage } from './cursor';
import { applyPendingStatuses, type StatusChange } from './statuses';

export interface MessageRow {
  id: number;
  conversation_id: number;
  wamid: string | null;
  direction: 'inbound' | 'outbound';
  type: string;
  text: string | null;
  content_json: string;
  context_wamid: string | null;
  media_id: string | null;
  sent_at: number;
  received_at: number;
  status: string;
  status_at: number | null;
  error_code: number | null;
  error_title: string | null;
  author_user_id: string | null;
  edited_at: number | null;
  revoked_at: number | null;
  origin: 'phone' | null;
}

export interface InboundMessageInput {
  conversationId: number;
  wamid: string;
  type: string;
  text: string | null;
  content: unknown;
  contextWamid: string | null;
  mediaId: string | null;
  sentAt: number;
}

/**
 * Stores a message from a webhook once: returns its id, or null when this wamid is already stored.
 * Inbound by default; `origin: 'phone'` is the clinic's own message sent from the WhatsApp Business
 * app (an `smb_message_echoes` echo), stored outbound as already sent.
 */
export function insertInboundMessage(
  db: Database,
  m: InboundMessageInput & { direction?: 'inbound' | 'outbound'; origin?: 'phone' | null },
  receivedAt: number,
): number | null {
  const direction = m.direction ?? 'inbound';
  const row = stmt(
    db,
    `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, context_wamid, media_id, sent_at, received_at, status, origin)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (wamid) DO NOTHING RETURNING id`,
  ).get(
    m.conversationId,
    m.wamid,
    direction,
    m.type,
    m.text,
    JSON.stringify(m.content),
    m.contextWamid,
    m.mediaId,
    m.sentAt,
    receivedAt,
    direction === 'inbound' ? 'received' : 'sent',
    m.origin ?? null,
  ) as { id: number } | undefined;
  return row?.id ?? null;
}

export interface RevisionInput {
  conversationId: number;
  eventWamid: string;
  originalWamid: string;
  kind: 'edit' | 'revoke';
  /** Which side may change the original: the patient's own messages, or the clinic's (echoes). */
  direction: 'inbound' | 'outbound';
  text: string | null;
  content: Record<string, unknown> | null;
  at: number;
}

export type RevisionOutcome = 'duplicate' | 'pending' | 'applied' | 'refused';

/**
 * An edit or revoke of the message `originalWamid`, kept in `message_revisions` (once per event
 * wamid) and applied to the original when it is stored and belongs to the same thread and side; an
 * original not stored yet gets it when it arrives (`applyPendingRevisions`).
 */
export function recordRevision(db: Database, r: RevisionInput, now: number): { outcome: RevisionOutcome; messageId: number | null } {
  const inserted = stmt(
    db,
    `INSERT INTO message_revisions (conversation_id, direction, original_wamid, event_wamid, kind, new_text, new_content_json, changed_at, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_wamid) DO NOTHING RETURNING id`,
  ).get(r.conversationId, r.direction, r.originalWamid, r.eventWamid, r.kind, r.text, r.content ? JSON.stringify(r.content) : null, r.at, now) as
    | { id: number }
    | undefined;
  if (!inserted) return { outcome: 'duplicate', messageId: null };
  const original = getMessageByWamid(db, r.originalWamid);
  if (!original) return { outcome: 'pending', messageId: null };
  return { outcome: applyRevision(db, inserted.id, original, now) ? 'applied' : 'refused', messageId: original.id };
}

/** Edits and revokes that arrived before their message, applied in the order they were made. */
export function applyPendingRevisions(db: Database, message: Pick<MessageRow, 'id' | 'wamid'>, now: number): boolean {
  const ids = stmt(db, 'SELECT id FROM message_revisions WHERE original_wamid = ? AND message_id IS NULL ORDER BY changed_at, id')
    .pluck()
    .all(message.wamid) as number[];
  let changed = false;
  for (const id of ids) {
    const current = getMessage(db, message.id);
    if (current && applyRevision(db, id, current, now)) changed = true;
  }
  return changed;
}

interface RevisionRow {
  id: number;
  conversation_id: number;
  direction: 'inbound' | 'outbound';
  kind: 'edit' | 'revoke';
  new_text: string | null;
  new_content_json: string | null;
  changed_at: number;
}

function applyRevision(db: Database, revisionId: number, m: MessageRow, now: number): boolean {
  const r = stmt(db, 'SELECT id, conversation_id, direction, kind, new_text, new_content_json, changed_at FROM message_revisions WHERE id = ?').get(revisionId) as RevisionRow;
  // Only the sender may change a message: the same thread, the same side.
  if (r.conversation_id !== m.conversation_id || r.direction !== m.direction) return false;
  const keep = stmt(db, 'UPDATE message_revisions SET message_id = ?, previous_text = ?, previous_content_json = ?, applied_at = ? WHERE id = ?');
  if (m.revoked_at !== null) {
    // Nothing is left to change; the event is kept, linked, without a copy of anything.
    keep.run(m.id, null, null, now, r.id);
    return false;
  }
  if (r.kind === 'revoke') {
    keep.run(m.id, m.text, m.content_json, now, r.id);
    // Text (and so the search index, by trigger), content and media leave the message itself.
    stmt(db, `UPDATE messages SET text = NULL, content_json = ?, media_id = NULL, revoked_at = ? WHERE id = ?`).run(
      JSON.stringify({ type: m.type, revoked: true }),
      r.changed_at,
      m.id,
    );
    stmt(db, 'DELETE FROM media WHERE message_id = ?').run(m.id);
    return true;
  }
  // An older edit arriving after a newer one is kept in the history, not shown.
  if (m.edited_at !== null && m.edited_at > r.changed_at) {
    keep.run(m.id, null, null, now, r.id);
    return false;
  }
  keep.run(m.id, m.text, m.content_json, now, r.id);
  const content = JSON.parse(m.content_json) as Record<string, unknown>;
  stmt(db, 'UPDATE messages SET text = ?, content_json = ?, edited_at = ? WHERE id = ?').run(
    r.new_text,
    JSON.stringify({ ...content, edited: r.new_content_json ? (JSON.parse(r.new_content_json) as unknown) : null }),
    r.changed_at,
    m.id,
  );
  return true;
}

/** Earlier versions of a message, oldest first (the audit trail of its edits). */
export function listRevisions(db: Database, messageId: number): { kind: 'edit' | 'revoke'; previousText: string | null; changedAt: number }[] {
  return (
    stmt(db, 'SELECT kind, previous_text, changed_at FROM message_revisions WHERE message_id = ? ORDER BY changed_at, id').all(messageId) as {
      kind: 'edit' | 'revoke';
      previous_text: string | null;
      changed_at: number;
    }[]
  ).map((r) => ({ kind: r.kind, previousText: r.previous_text, changedAt: r.changed_at }));
}

export interface CallLine {
  event: string;
  status: string | null;
  durationSeconds: number | null;
  direction: string | null;
}

const CALL_RANK: Record<string, number> = { connect: 1, status: 2, terminate: 3 };

/**
 * A call as one line of its thread, keyed by Meta's call id: the first event stores it, later
 * ones (a status, the end of the call) update it; an earlier event arriving late changes nothing.
 * Returns the message id and whether anything changed.
 */
export function upsertCall(
  db: Database,
  c: { conversationId: number; callId: string; direction: 'inbound' | 'outbound'; call: CallLine; at: number },
  now: number,
): { messageId: number; created: boolean; changed: boolean } {
  const content = { type: 'call', call: c.call };
  const id = insertInboundMessage(
    db,
    { conversationId: c.conversationId, wamid: c.callId, type: 'call', text: null, content, contextWamid: null, mediaId: null, sentAt: c.at, direction: c.direction },
    now,
  );
  if (id !== null) return { messageId: id, created: true, changed: true };
  const existing = getMessageByWamid(db, c.callId)!;
  if (existing.type !== 'call' || existing.conversation_id !== c.conversationId) return { messageId: existing.id, created: false, changed: false };
  const before = (JSON.parse(existing.content_json) as { call?: CallLine }).call;
  const beforeRank = CALL_RANK[before?.event ?? ''] ?? 0;
  const rank = CALL_RANK[c.call.event] ?? 0;
  const merged = { ...before, ...c.call, durationSeconds: c.call.durationSeconds ?? before?.durationSeconds ?? null };
  if (rank < beforeRank || JSON.stringify(merged) === JSON.stringify(before)) return { messageId: existing.id, created: false, changed: false };
  stmt(db, 'UPDATE messages SET content_json = ? WHERE id = ?').run(JSON.stringify({ type: 'call', call: merged }), existing.id);
  return { messageId: existing.id, created: false, changed: true };
}

export interface OutboundMessageInput {
  conversationId: number;
  type: string;
  text: string | null;
  content: unknown;
  contextWamid?: string | null;
  mediaId?: string | null;
  authorUserId: string | null;
}

/** A reply the clinic is sending: no wamid until Meta accepts it (see `setOutboundWamid`). */
export function insertOutboundMessage(db: Database, m: OutboundMessageInput, now: number): number {
  return Number(
    stmt(
      db,
      `INSERT INTO messages (conversation_id, direction, type, text, content_json, context_wamid, media_id, sent_at, received_at, status, author_user_id)
       VALUES (?, 'outbound', ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
    ).run(m.conversationId, m.type, m.text, JSON.stringify(m.content), m.contextWamid ?? null, m.mediaId ?? null, now, now, m.authorUserId)
      .lastInsertRowid,
  );
}

/**
 * Meta accepted a send and named it: records the wamid, moves a pending message to `sent`, and
 * applies any statuses whose webhook beat the Graph API response.
 */
export function setOutboundWamid(db: Database, messageId: number, wamid: string, now: number): StatusChange | null {
  stmt(
    db,
    `UPDATE messages SET wamid = ?, status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END,
       status_at = coalesce(status_at, ?) WHERE id = ? AND direction = 'outbound'`,
  ).run(wamid, now, messageId);
  return applyPendingStatuses(db, messageId, now);
}

export function getMessage(db: Database, id: number): MessageRow | null {
  return (stmt(db, 'SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined) ?? null;
}

export function getMessageByWamid(db: Database, wamid: string): MessageRow | null {
  return (stmt(db, 'SELECT * FROM messages WHERE wamid = ?').get(wamid) as MessageRow | undefined) ?? null;
}

export const ThreadPageSchema = z.object({
  conversationId: z.number().int().positive(),
  limit: PageLimitSchema.default(50),
  /** From a previous page's `nextCursor`: continues with older messages. */
  cursor: z.string().nullish(),
});
export type ThreadPageInput = z.input<typeof ThreadPageSchema>;

export interface ThreadMessage extends Omit<InboundMessageInput, 'conversationId' | 'wamid'> {
  id: number;
  /** Null for an outbound message Meta has not accepted yet. */
  wamid: string | null;
  direction: 'inbound' | 'outbound';
  status: string;
  statusAt: number | null;
  error: { code: number | null; title: string | null } | null;
  authorUserId: string | null;
  /** When the sender last edited it (null: never). */
  editedAt: number | null;
  /** When the sender deleted it for everyone (null: not deleted); text, content and media are gone. */
  revokedAt: number | null;
  /** `phone`: the clinic sent it from the WhatsApp Business app. */
  origin: 'phone' | null;
  /**
   * Current reactions (removed ones are not listed, except the clinic's own removal while it is
   * being sent or after it failed: `emoji` is empty then). `status`: the desk's own send, null for
   * what Meta reported.
   */
  reactions: ThreadReaction[];
}

export interface ThreadReaction {
  emoji: string;
  fromBusiness: boolean;
  /** Only for the clinic's reaction sent from the desk. */
  status?: 'pending' | 'sent' | 'failed';
  errorTitle?: string | null;
}

/** One page of a thread, newest first (the UI reverses it for display). */
export function listThread(db: Database, input: ThreadPageInput): Page<ThreadMessage> {
  const { conversationId, limit, cursor } = ThreadPageSchema.parse(input);
  const [at, id] = decodeCursor(cursor);
  const rows = stmt(
    db,
    `SELECT * FROM messages WHERE conversation_id = ? AND (sent_at, id) < (?, ?)
     ORDER BY sent_at DESC, id DESC LIMIT ?`,
  ).all(conversationId, at, id, limit + 1) as MessageRow[];
  const { page, nextFrom } = splitPage(rows, limit);
  const wamids = page.map((r) => r.wamid).filter((w): w is string => w !== null);
  const reactions = new Map<string, ThreadReaction[]>();
  if (wamids.length > 0) {
    const rs = stmt(
      db,
      `SELECT target_wamid, emoji, from_business, status, error_title FROM reactions
       WHERE target_wamid IN (SELECT value FROM json_each(?)) AND (emoji <> '' OR status IN ('pending', 'failed')) ORDER BY reacted_at`,
    ).all(JSON.stringify(wamids)) as { target_wamid: string; emoji: string; from_business: number; status: ThreadReaction['status'] | null; error_title: string | null }[];
    for (const r of rs) {
      const list = reactions.get(r.target_wamid) ?? [];
      list.push({ emoji: r.emoji, fromBusiness: r.from_business === 1, ...(r.status ? { status: r.status, errorTitle: r.error_title } : {}) });
      reactions.set(r.target_wamid, list);
    }
  }
  return {
    items: page.map((r) => ({
      id: r.id,
      wamid: r.wamid,
      direction: r.direction,
      type: r.type,
      text: r.text,
      content: JSON.parse(r.content_json) as unknown,
      contextWamid: r.context_wamid,
      mediaId: r.media_id,
      sentAt: r.sent_at,
      status: r.status,
      statusAt: r.status_at,
      error: r.error_code === null && r.error_title === null ? null : { code: r.error_code, title: r.error_title },
      authorUserId: r.author_user_id,
      editedAt: r.edited_at,
      revokedAt: r.revoked_at,
      origin: r.origin,
      reactions: (r.wamid && reactions.get(r.wamid)) || [],
    })),
    nextCursor: nextFrom ? encodeCursor(nextFrom.sent_at, nextFrom.id) : null,
  };
}

/**
 * A reaction by the patient (or the clinic) to a message, by wamid (the message may be one we
 * have not stored, or not yet). Later reactions by Meta's timestamp win; an empty emoji is a
 * removal and is kept as such so an older, late "add" cannot resurrect it.
 */
export function upsertReaction(
  db: Database,
  r: { targetWamid: string; contactId: number; fromBusiness: boolean; emoji: string; reactionWamid: string | null; reactedAt: number },
): boolean {
  return (
    stmt(
      db,
      `INSERT INTO reactions (target_wamid, contact_id, from_business, emoji, reaction_wamid, reacted_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (target_wamid, contact_id, from_business) DO UPDATE SET
         emoji = excluded.emoji, reaction_wamid = excluded.reaction_wamid, reacted_at = excluded.reacted_at,
         status = NULL, status_at = NULL, error_code = NULL, error_title = NULL
       WHERE excluded.reacted_at >= reactions.reacted_at
         AND (excluded.emoji IS NOT reactions.emoji OR excluded.reaction_wamid IS NOT reactions.reaction_wamid)`,
    ).run(r.targetWamid, r.contactId, r.fromBusiness ? 1 : 0, r.emoji, r.reactionWamid, r.reactedAt).changes > 0
  );
}
