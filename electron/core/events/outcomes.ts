// The delivery log's writes, made by the events worker on its own connection.
import { appendAudit } from '../audit/auditLog';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

export interface Outcome {
  kind: 'delivered' | 'retry' | 'failed';
  id: number;
  attempt: { statusCode: number | null; error: string | null; latencyMs: number };
  at: number;
  /** When a retry is due. */
  next?: number;
}

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
  db.transaction(() => {
    const contacts = new Map<number, Set<number>>();
    for (const b of batches) {
      for (const o of b.outcomes) {
        if (o.kind === 'delivered') delivered.run(o.attempt.statusCode, o.attempt.latencyMs, o.at, o.id);
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
