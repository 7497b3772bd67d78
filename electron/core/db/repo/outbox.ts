import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { MessageStatus } from '../../../../shared/rpc';
import { GraphIdSchema, SendMessageRequestSchema, WamidSchema } from '../../graph/schemas';
import { MEDIA_KINDS } from '../../media/limits';
import { stmt } from '../statements';
import type { Database } from '../types';
import { insertOutboundMessage } from './messages';
import { applyPendingStatuses } from './statuses';

/**
 * The outbox: every outbound WhatsApp call, stored before it is attempted. A row moves
 * `queued → sending → sent | failed`, and back to `queued` for a retry. `sending` is committed
 * before the request leaves, so after a crash a `sending` row means "Meta may have it": such rows
 * become *unconfirmed* (marker in `last_error_code`) and are settled by the status webhook that
 * echoes their id in `biz_opaque_callback_data`, never by sending again. See outbox/README.md.
 */

/** `last_error_code` of a `sending` row whose outcome is unknown (crash or lost answer). */
export const UNCONFIRMED = 'UNCONFIRMED';
/**
 * A settled row keeps no second copy of what was sent (text, recipient): the message row is the
 * record. Nothing reads a settled row's job again; reconciliation needs only the row id.
 */
const REDACTED = `json_object('kind', kind, 'redacted', 1)`;

/** Jobs whose request may go twice without harm (the patient sees the same state): retried, never left unconfirmed. */
export const REPEATABLE_KINDS: ReadonlySet<OutboxJob['kind']> = new Set(['read', 'reaction']);
const REPEATABLE = `(${[...REPEATABLE_KINDS].map((k) => `'${k}'`).join(', ')})`;

/** Prefix of `biz_opaque_callback_data`: names the outbox row a status webhook is about. */
export const CALLBACK_PREFIX = 'ci-outbox:';

export const OutboxJobSchema = z.discriminatedUnion('kind', [
  /** A message whose Meta payload is complete at enqueue time (text, template). */
  z.object({ kind: z.literal('message'), phoneNumberId: GraphIdSchema, request: SendMessageRequestSchema }),
  /** A media message: the file (in the `media` table) is uploaded first, then sent by id. */
  z.object({
    kind: z.literal('media'),
    phoneNumberId: GraphIdSchema,
    to: z.string().min(1),
    mediaRowId: z.number().int().positive(),
    mediaKind: z.enum(MEDIA_KINDS),
    caption: z.string().max(1024).optional(),
    filename: z.string().max(240).optional(),
    replyToWamid: WamidSchema.optional(),
  }),
  /** A read receipt for the newest inbound message; repeating one is harmless. */
  z.object({ kind: z.literal('read'), phoneNumberId: GraphIdSchema, wamid: WamidSchema }),
  /**
   * The clinic's reaction to the patient's message `targetWamid` (the row's `message_id`). The
   * emoji is not stored here: the worker sends the one the `reactions` row holds when it sends, so
   * the latest choice goes out. Sending the same reaction again is harmless, like a read receipt.
   */
  z.object({ kind: z.literal('reaction'), phoneNumberId: GraphIdSchema, to: z.string().min(1), targetWamid: WamidSchema }),
]);
export type OutboxJob = z.infer<typeof OutboxJobSchema>;

export interface OutboxRow {
  id: string;
  messageId: number | null;
  conversationId: number | null;
  kind: string;
  job: OutboxJob;
  attempts: number;
  createdAt: number;
}

export interface OutboundMessageInput {
  conversationId: number;
  type: string;
  text: string | null;
  content: Record<string, unknown>;
  contextWamid: string | null;
  authorUserId: string | null;
  now: number;
}

/**
 * Stores an outbound message as `pending` and its outbox row in one transaction, and moves the
 * conversation to the top of the inbox. `job` receives the new message id (media jobs need the
 * media row linked to it first).
 */
export function enqueueOutbound(
  db: Database,
  message: OutboundMessageInput,
  job: (messageId: number) => OutboxJob,
): { messageId: number; outboxId: string } {
  return db.transaction(() => {
    const messageId = insertOutboundMessage(
      db,
      {
        conversationId: message.conversationId,
        type: message.type,
        text: message.text,
        content: message.content,
        contextWamid: message.contextWamid,
        authorUserId: message.authorUserId,
      },
      message.now,
    );
    const outboxId = insertJob(db, job(messageId), messageId, message.now);
    stmt(db, 'UPDATE conversations SET last_activity_at = ?, last_message_id = ?, updated_at = ? WHERE id = ?').run(
      message.now,
      messageId,
      message.now,
      message.conversationId,
    );
    return { messageId, outboxId };
  })();
}

/** Queues a job that has no message row of its own (read receipts), or one about another message (`messageId`: a reaction's target). */
export function enqueueJob(db: Database, job: OutboxJob, now: number, messageId: number | null = null): string {
  return insertJob(db, job, messageId, now);
}

function insertJob(db: Database, job: OutboxJob, messageId: number | null, now: number): string {
  const id = randomUUID();
  stmt(
    db,
    `INSERT INTO outbox (id, message_id, kind, request_json, state, attempts, next_attempt_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?)`,
  ).run(id, messageId, job.kind, JSON.stringify(OutboxJobSchema.parse(job)), now, now, now);
  return id;
}

interface RawRow {
  id: string;
  message_id: number | null;
  conversation_id: number | null;
  kind: string;
  request_json: string;
  attempts: number;
  created_at: number;
}

/**
 * Rows due now, oldest first. A message waits while an older message to the same conversation is
 * still queued (retrying), so a patient never receives replies out of order. Rows whose stored job
 * no longer parses are returned in `invalid` for the caller to fail with a log line.
 */
export function dueJobs(db: Database, now: number, limit: number): { due: OutboxRow[]; invalid: RawRow[] } {
  const rows = stmt(
    db,
    `SELECT o.id, o.message_id, m.conversation_id, o.kind, o.request_json, o.attempts, o.created_at
       FROM outbox o LEFT JOIN messages m ON m.id = o.message_id
      WHERE o.state = 'queued' AND o.next_attempt_at <= ?
        AND NOT EXISTS (
          SELECT 1 FROM outbox p JOIN messages pm ON pm.id = p.message_id
           WHERE m.conversation_id IS NOT NULL AND pm.conversation_id = m.conversation_id
             AND p.rowid < o.rowid AND p.state = 'queued')
      ORDER BY o.rowid LIMIT ?`,
  ).all(now, limit) as RawRow[];
  const due: OutboxRow[] = [];
  const invalid: RawRow[] = [];
  for (const r of rows) {
    let parsed: ReturnType<typeof OutboxJobSchema.safeParse> | null = null;
    try {
      parsed = OutboxJobSchema.safeParse(JSON.parse(r.request_json));
    } catch {
      parsed = null;
    }
    if (parsed?.success) {
      due.push({ id: r.id, messageId: r.message_id, conversationId: r.conversation_id, kind: r.kind, job: parsed.data, attempts: r.attempts, createdAt: r.created_at });
    } else invalid.push(r);
  }
  return { due, invalid };
}

/** When the next queued row falls due (ms), or null when nothing waits. */
export function nextDueAt(db: Database): number | null {
  const row = stmt(db, `SELECT min(next_attempt_at) AS at FROM outbox WHERE state = 'queued'`).get() as { at: number | null };
  return row.at;
}

/**
 * Claims a row immediately before its request leaves. Committed on its own (synchronous=FULL), so
 * a crash after this point is seen on restart as "may have been sent". False if already claimed.
 */
export function markSending(db: Database, id: string, now: number): boolean {
  return stmt(db, `UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'queued'`).run(now, id).changes === 1;
}

/** A step before the send itself failed or was deferred (media upload); counts as an attempt. */
export function countAttempt(db: Database, id: string, now: number): void {
  stmt(db, 'UPDATE outbox SET attempts = attempts + 1, updated_at = ? WHERE id = ?').run(now, id);
}

export interface StatusChange {
  messageId: number;
  conversationId: number;
  status: MessageStatus;
  /** Meta's error code when the status is `failed` with one (e.g. 131050, the patient stopped marketing messages). */
  errorCode: number | null;
}

/**
 * Meta accepted the message: the outbox row is done, the message gets its wamid and shows as sent.
 * Status webhooks that arrived before the wamid was known (they are stored unapplied) apply now.
 */
export function markSent(db: Database, id: string, wamid: string, now: number): StatusChange | null {
  return db.transaction(() => {
    const row = stmt(db, 'SELECT message_id FROM outbox WHERE id = ?').get(id) as { message_id: number | null } | undefined;
    markJobDone(db, id, now);
    if (!row?.message_id) return null;
    stmt(
      db,
      `UPDATE messages SET wamid = ?, status = 'sent', status_at = ?, error_code = NULL, error_title = NULL
        WHERE id = ? AND status IN ('pending', 'failed')`,
    ).run(wamid, now, row.message_id);
    // The status webhook can beat the Graph API's answer; ingest kept it unapplied until now.
    applyPendingStatuses(db, row.message_id, now);
    return messageStatus(db, row.message_id);
  })();
}

/** A job done that has no message of its own to settle (a reaction, which `reactions` records). */
export function markJobDone(db: Database, id: string, now: number): void {
  stmt(db, `UPDATE outbox SET state = 'sent', request_json = ${REDACTED}, last_error_code = NULL, last_error_detail = NULL, updated_at = ? WHERE id = ?`).run(now, id);
}

export function markRetry(db: Database, id: string, p: { nextAttemptAt: number; code: string; detail: string; now: number }): void {
  stmt(
    db,
    `UPDATE outbox SET state = 'queued', next_attempt_at = ?, last_error_code = ?, last_error_detail = ?, updated_at = ? WHERE id = ?`,
  ).run(p.nextAttemptAt, p.code, p.detail, p.now, id);
}

/** Back to the queue without spending an attempt (sending paused for a new token). */
export function requeue(db: Database, id: string, p: { code: string; detail: string; now: number }): void {
  stmt(
    db,
    `UPDATE outbox SET state = 'queued', attempts = max(attempts - 1, 0), last_error_code = ?, last_error_detail = ?, updated_at = ? WHERE id = ?`,
  ).run(p.code, p.detail, p.now, id);
}

/** Meta refused the message for good (or retries ran out): the message shows failed with the reason. */
export function markFailed(db: Database, id: string, p: { code: string; metaCode: number | null; title: string; now: number }): StatusChange | null {
  return db.transaction(() => {
    const row = stmt(db, 'SELECT message_id FROM outbox WHERE id = ?').get(id) as { message_id: number | null } | undefined;
    stmt(db, `UPDATE outbox SET state = 'failed', request_json = ${REDACTED}, last_error_code = ?, last_error_detail = ?, updated_at = ? WHERE id = ?`).run(
      p.code,
      p.title,
      p.now,
      id,
    );
    if (!row?.message_id) return null;
    stmt(db, `UPDATE messages SET status = 'failed', status_at = ?, error_code = ?, error_title = ? WHERE id = ? AND wamid IS NULL`).run(
      p.now,
      p.metaCode,
      p.title,
      row.message_id,
    );
    return messageStatus(db, row.message_id);
  })();
}

/** The answer to a send was lost: wait for Meta's status webhook instead of sending again. */
export function markUnconfirmed(db: Database, id: string, p: { deadline: number; detail: string; now: number }): void {
  stmt(db, `UPDATE outbox SET state = 'sending', last_error_code = ?, last_error_detail = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`).run(
    UNCONFIRMED,
    p.detail,
    p.deadline,
    p.now,
    id,
  );
}

/**
 * Start-up: any row still `sending` was in flight when the process died. Read receipts are simply
 * queued again; messages become unconfirmed until `deadline`. Returns how many of each.
 */
export function recoverInterrupted(db: Database, p: { deadline: number; now: number }): { requeued: number; unconfirmed: number } {
  return db.transaction(() => {
    const requeued = stmt(db, `UPDATE outbox SET state = 'queued', updated_at = ? WHERE state = 'sending' AND kind IN ${REPEATABLE}`).run(p.now).changes;
    const unconfirmed = stmt(
      db,
      `UPDATE outbox SET last_error_code = ?, last_error_detail = 'interrupted while sending', next_attempt_at = ?, updated_at = ?
        WHERE state = 'sending' AND (last_error_code IS NULL OR last_error_code <> ?)`,
    ).run(UNCONFIRMED, p.deadline, p.now, UNCONFIRMED).changes;
    return { requeued, unconfirmed };
  })();
}

/**
 * Settles unconfirmed rows from status webhooks that name them in `biz_opaque_callback_data`
 * (stored unapplied by ingest, since no message had their wamid yet). A row already given up on
 * (`failed`, unconfirmed) is still settled when the webhook comes late: it did reach the patient.
 */
export function reconcileUnconfirmed(db: Database, now: number, lookbackMs = 7 * 86_400_000): StatusChange[] {
  const rows = stmt(
    db,
    `SELECT id FROM outbox WHERE last_error_code = ? AND state IN ('sending', 'failed') AND message_id IS NOT NULL AND updated_at >= ?`,
  ).all(UNCONFIRMED, now - lookbackMs) as Array<{ id: string }>;
  const changes: StatusChange[] = [];
  for (const { id } of rows) {
    const hit = stmt(
      db,
      `SELECT wamid FROM message_statuses
        WHERE applied_at IS NULL AND json_extract(raw_json, '$.biz_opaque_callback_data') = ?
        ORDER BY status_at LIMIT 1`,
    ).get(`${CALLBACK_PREFIX}${id}`) as { wamid: string } | undefined;
    if (!hit) continue;
    const change = markSent(db, id, hit.wamid, now);
    if (change) changes.push(change);
  }
  return changes;
}

/** Unconfirmed rows past their deadline: shown as failed, with a reason that says what is known. */
export function expireUnconfirmed(db: Database, now: number): StatusChange[] {
  const rows = stmt(db, `SELECT id FROM outbox WHERE state = 'sending' AND last_error_code = ? AND next_attempt_at <= ?`).all(UNCONFIRMED, now) as Array<{
    id: string;
  }>;
  const changes: StatusChange[] = [];
  for (const { id } of rows) {
    const change = markFailed(db, id, {
      code: UNCONFIRMED,
      metaCode: null,
      title: 'WhatsApp did not confirm this message. It may have reached the patient; check before sending it again.',
      now,
    });
    if (change) changes.push(change);
  }
  return changes;
}

function messageStatus(db: Database, messageId: number): StatusChange | null {
  const m = stmt(db, 'SELECT id, conversation_id, status, error_code FROM messages WHERE id = ?').get(messageId) as
    | { id: number; conversation_id: number; status: MessageStatus; error_code: number | null }
    | undefined;
  return m ? { messageId: m.id, conversationId: m.conversation_id, status: m.status, errorCode: m.status === 'failed' ? m.error_code : null } : null;
}

/**
 * Deletes settled rows older than `before`. Unconfirmed rows given up on stay for the lookback of
 * `reconcileUnconfirmed`, so a very late status webhook can still settle their message.
 */
export function pruneSettled(db: Database, p: { before: number; unconfirmedBefore: number }): number {
  return stmt(
    db,
    `DELETE FROM outbox WHERE state IN ('sent', 'failed') AND updated_at < ?
       AND (last_error_code IS NOT ? OR updated_at < ?)`,
  ).run(p.before, UNCONFIRMED, p.unconfirmedBefore).changes;
}

/** For the admin view and tests: counts per state. */
export function outboxCounts(db: Database): Record<'queued' | 'sending' | 'sent' | 'failed' | 'unconfirmed', number> {
  const rows = stmt(db, `SELECT state, last_error_code = ? AS unconfirmed, count(*) AS n FROM outbox GROUP BY 1, 2`).all(UNCONFIRMED) as Array<{
    state: 'queued' | 'sending' | 'sent' | 'failed';
    unconfirmed: number | null;
    n: number;
  }>;
  const out = { queued: 0, sending: 0, sent: 0, failed: 0, unconfirmed: 0 };
  for (const r of rows) {
    if (r.state === 'sending' && r.unconfirmed) out.unconfirmed += r.n;
    else out[r.state] += r.n;
  }
  return out;
}

export function failInvalidJob(db: Database, id: string, now: number): StatusChange | null {
  return markFailed(db, id, { code: 'VALIDATION_FAILED', metaCode: null, title: 'This queued message could not be read back and was not sent.', now });
}
