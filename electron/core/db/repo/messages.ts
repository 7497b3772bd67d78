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

/** Stores an inbound message once: returns its id, or null when this wamid is already stored. */
export function insertInboundMessage(db: Database, m: InboundMessageInput, receivedAt: number): number | null {
  const row = stmt(
    db,
    `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, context_wamid, media_id, sent_at, received_at, status)
     VALUES (?, ?, 'inbound', ?, ?, ?, ?, ?, ?, ?, 'received')
     ON CONFLICT (wamid) DO NOTHING RETURNING id`,
  ).get(m.conversationId, m.wamid, m.type, m.text, JSON.stringify(m.content), m.contextWamid, m.mediaId, m.sentAt, receivedAt) as
    | { id: number }
    | undefined;
  return row?.id ?? null;
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
  /** Current reactions (removed ones are not listed). */
  reactions: { emoji: string; fromBusiness: boolean }[];
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
  const reactions = new Map<string, { emoji: string; fromBusiness: boolean }[]>();
  if (wamids.length > 0) {
    const rs = stmt(
      db,
      `SELECT target_wamid, emoji, from_business FROM reactions
       WHERE target_wamid IN (SELECT value FROM json_each(?)) AND emoji <> '' ORDER BY reacted_at`,
    ).all(JSON.stringify(wamids)) as { target_wamid: string; emoji: string; from_business: number }[];
    for (const r of rs) {
      const list = reactions.get(r.target_wamid) ?? [];
      list.push({ emoji: r.emoji, fromBusiness: r.from_business === 1 });
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
         emoji = excluded.emoji, reaction_wamid = excluded.reaction_wamid, reacted_at = excluded.reacted_at
       WHERE excluded.reacted_at >= reactions.reacted_at
         AND (excluded.emoji IS NOT reactions.emoji OR excluded.reaction_wamid IS NOT reactions.reaction_wamid)`,
    ).run(r.targetWamid, r.contactId, r.fromBusiness ? 1 : 0, r.emoji, r.reactionWamid, r.reactedAt).changes > 0
  );
}
