import { stmt } from '../statements';
import type { Database } from '../types';
import { applyReactionStatus, type ReactionChange } from './reactions';

/**
 * How far along a message is. A status only ever moves a message forward, whatever order Meta's
 * webhooks arrive in: a late `sent` after `read` leaves it read. `failed` ranks between `sent`
 * and `delivered`: it overrides pending/sent, but a message WhatsApp reports delivered or read
 * demonstrably arrived, so a stray `failed` after that is recorded in the history only; and a
 * `delivered`/`read` after `failed` (Meta retried and got through) moves it on.
 * `played` (voice note listened to) follows `read`.
 */
const RANK: Record<string, number> = { pending: 0, sent: 1, failed: 1.5, delivered: 2, read: 3, played: 4 };

export function statusRank(status: string): number | undefined {
  return Object.hasOwn(RANK, status) ? RANK[status] : undefined;
}

export interface StatusInput {
  wamid: string;
  status: string;
  statusAt: number;
  errorCode: number | null;
  errorTitle: string | null;
  raw: unknown;
}

export interface StatusChange {
  messageId: number;
  conversationId: number;
  wamid: string;
  status: string;
  statusAt: number;
  errorCode: number | null;
}

interface MessageStatusRow {
  id: number;
  conversation_id: number;
  direction: string;
  status: string;
}

/**
 * Records one status in the history (unique per (wamid, status): a redelivery is a no-op) and,
 * if the message is already stored, applies it. Returns `{recorded:false}` for a duplicate and the
 * change when the message's current status moved.
 */
export function recordStatus(
  db: Database,
  s: StatusInput,
  receivedAt: number,
): { recorded: boolean; pending: boolean; change: StatusChange | null; reaction?: ReactionChange } {
  const inserted = stmt(
    db,
    `INSERT INTO message_statuses (wamid, status, status_at, error_code, error_title, raw_json, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (wamid, status) DO NOTHING`,
  ).run(s.wamid, s.status, s.statusAt, s.errorCode, s.errorTitle, JSON.stringify(s.raw), receivedAt);
  if (inserted.changes === 0) return { recorded: false, pending: false, change: null };
  const message = stmt(db, 'SELECT id, conversation_id, direction, status FROM messages WHERE wamid = ?').get(s.wamid) as
    | MessageStatusRow
    | undefined;
  if (!message) {
    // Not a message: perhaps a reaction the desk sent (Meta reports those by the reaction's own wamid).
    const reaction = applyReactionStatus(db, { wamid: s.wamid, status: s.status, errorCode: s.errorCode, errorTitle: s.errorTitle, now: receivedAt });
    return reaction ? { recorded: true, pending: false, change: null, reaction } : { recorded: true, pending: true, change: null };
  }
  const change = applyToMessage(db, message, s, receivedAt);
  return { recorded: true, pending: false, change };
}

function applyToMessage(db: Database, message: MessageStatusRow, s: Omit<StatusInput, 'raw'>, now: number): StatusChange | null {
  stmt(db, 'UPDATE message_statuses SET applied_at = ? WHERE wamid = ? AND status = ?').run(now, s.wamid, s.status);
  if (message.direction !== 'outbound') return null;
  const next = statusRank(s.status);
  const current = statusRank(message.status) ?? 0;
  if (next === undefined || next <= current) return null;
  stmt(db, 'UPDATE messages SET status = ?, status_at = ?, error_code = ?, error_title = ? WHERE id = ?').run(
    s.status,
    s.statusAt,
    s.status === 'failed' ? s.errorCode : null,
    s.status === 'failed' ? s.errorTitle : null,
    message.id,
  );
  message.status = s.status;
  return { messageId: message.id, conversationId: message.conversation_id, wamid: s.wamid, status: s.status, statusAt: s.statusAt, errorCode: s.status === 'failed' ? s.errorCode : null };
}

/**
 * Applies statuses that arrived before their message. Call it whenever a message gets its wamid:
 * ingest does for inbound messages; the outbox must after Meta accepts a send (the webhook can
 * beat the Graph API's response). Returns the resulting change, if the message moved.
 */
export function applyPendingStatuses(db: Database, messageId: number, now: number): StatusChange | null {
  const message = stmt(db, 'SELECT id, conversation_id, direction, status, wamid FROM messages WHERE id = ?').get(messageId) as
    | (MessageStatusRow & { wamid: string | null })
    | undefined;
  if (!message?.wamid) return null;
  const pending = stmt(
    db,
    'SELECT wamid, status, status_at, error_code, error_title FROM message_statuses WHERE wamid = ? AND applied_at IS NULL',
  ).all(message.wamid) as { wamid: string; status: string; status_at: number; error_code: number | null; error_title: string | null }[];
  let last: StatusChange | null = null;
  for (const p of pending) {
    const change = applyToMessage(
      db,
      message,
      { wamid: p.wamid, status: p.status, statusAt: p.status_at, errorCode: p.error_code, errorTitle: p.error_title },
      now,
    );
    if (change) last = change;
  }
  return last;
}

export interface StatusHistoryRow {
  status: string;
  status_at: number;
  error_code: number | null;
  error_title: string | null;
}

/** Every status Meta reported for a message, oldest first (for the message-info view). */
export function listStatusHistory(db: Database, wamid: string): StatusHistoryRow[] {
  return stmt(
    db,
    'SELECT status, status_at, error_code, error_title FROM message_statuses WHERE wamid = ? ORDER BY status_at, id',
  ).all(wamid) as StatusHistoryRow[];
}
