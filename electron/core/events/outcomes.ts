// The delivery log's writes, made by the events worker on its own connection.
import { appendAudit } from '../audit/auditLog';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import type { NewDelivery } from './outbox';

export interface Attempt {
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

interface Attempted {
  kind: 'delivered' | 'retry' | 'failed';
  attempt: Attempt;
  at: number;
  /** When a retry is due. */
  next?: number;
}

export type Outcome =
  /** A delivery already in the log (a retry, or one that waited behind another). */
  | (Attempted & { id: number; fresh?: undefined })
  /** Sent straight from the outbox: its row is written now, with what happened. */
  | (Attempted & { fresh: NewDelivery })
  /** From the outbox, waiting behind an earlier event of its conversation that is not delivered yet. */
  | { kind: 'queued'; fresh: NewDelivery };

/** One subscriber's outcomes, and the patients whose events it delivered (for the export entry). */
export interface OutcomeBatch {
  subscriptionId: number;
  outcomes: Outcome[];
  contactIds: number[];
}

/**
 * Writes the outcomes and, per subscriber that received events about patients, one `export` audit
 * entry naming them: one transaction, so the log never says "delivered" without the entry. The
 * worker's connection commits without waiting for the disk (synchronous=NORMAL; the core's next
 * commit flushes the WAL with it): a power cut can only lose the latest outcomes together with their
 * entry, and those events then go, and are audited, again (at least once).
 */
export function writeOutcomes(db: Database, batches: readonly OutcomeBatch[], at: number): void {
  if (batches.length === 0) return;
  const delivered = stmt(
    db,
    `UPDATE event_deliveries SET status = 'delivered', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = NULL, delivered_at = ?, next_attempt_at = NULL WHERE id = ? AND status = 'pending'`,
  );
  const retry = stmt(db, `UPDATE event_deliveries SET attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'`);
  const failed = stmt(
    db,
    `UPDATE event_deliveries SET status = 'failed', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = NULL WHERE id = ? AND status = 'pending'`,
  );
  // Only while its event is still in its outbox row (an erasure since it was read dropped it there,
  // and no row of it, a body with the patient's data, may come back) and its subscription exists.
  const insert = stmt(
    db,
    `INSERT OR IGNORE INTO event_deliveries (subscription_id, event_id, type, ordering_key, contact_id, body, status, attempts, next_attempt_at, last_status_code, latency_ms, last_error, created_at, delivered_at)
     SELECT @subscriptionId, @eventId, @type, @orderingKey, @contactId, @body, @status, @attempts, @next, @code, @latency, @error, @createdAt, @deliveredAt
     WHERE EXISTS (SELECT 1 FROM event_outbox WHERE id = @outboxId AND instr(events, @eventId) > 0) AND EXISTS (SELECT 1 FROM event_subscriptions WHERE id = @subscriptionId)`,
  );
  db.transaction(() => {
    const contacts = new Map<number, Set<number>>();
    for (const b of batches) {
      for (const o of b.outcomes) {
        if (o.fresh) insert.run(newRow(o));
        else if (o.kind === 'delivered') delivered.run(o.attempt.statusCode, o.attempt.latencyMs, o.at, o.id);
        else if (o.kind === 'failed') failed.run(o.attempt.statusCode, o.attempt.latencyMs, o.attempt.error, o.id);
        else retry.run(o.attempt.statusCode, o.attempt.latencyMs, o.attempt.error, o.next ?? o.at, o.id);
      }
      let set = contacts.get(b.subscriptionId);
      if (!set) contacts.set(b.subscriptionId, (set = new Set()));
      for (const id of b.contactIds) set.add(id);
    }
    for (const [subscriptionId, ids] of contacts) {
      if (ids.size === 0) continue;
      appendAudit(db, { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, action: 'export', method: 'events.deliver', contactIds: [...ids], origin: 'core', outcome: 'ok', reason: `event subscription ${subscriptionId}` }, at);
    }
  }).immediate();
}

function newRow(o: Outcome & { fresh: NewDelivery }): Record<string, unknown> {
  const { fresh: f } = o;
  const row = { outboxId: f.outboxId, subscriptionId: f.subscriptionId, eventId: f.eventId, type: f.type, orderingKey: f.orderingKey, contactId: f.contactId, createdAt: f.createdAt };
  if (o.kind === 'queued') return { ...row, body: f.body, status: 'pending', attempts: 0, next: f.createdAt, code: null, latency: null, error: null, deliveredAt: null };
  const { attempt } = o;
  const tried = { attempts: 1, code: attempt.statusCode, latency: attempt.latencyMs };
  if (o.kind === 'delivered') return { ...row, ...tried, body: null, status: 'delivered', next: null, error: null, deliveredAt: o.at };
  if (o.kind === 'failed') return { ...row, ...tried, body: null, status: 'failed', next: null, error: attempt.error, deliveredAt: null };
  return { ...row, ...tried, body: f.body, status: 'pending', next: o.next ?? o.at, error: attempt.error, deliveredAt: null };
}
