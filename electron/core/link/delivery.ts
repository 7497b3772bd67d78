import type { EnvelopePlaintext } from '../../../shared/envelope';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { applyWebhook, emptyApplyResult, type ApplyResult } from '../ingest/apply';

export interface IngestResult extends ApplyResult {
  relaySeq: number;
  /** True when the delivery was not a readable webhook and was shelved in `dead_letters`. */
  deadLettered: boolean;
}

/**
 * One opened relay delivery → the store. A body that is not a webhook at all (not JSON, not the
 * outer shape) is kept in `dead_letters` — encrypted with the rest of the database, so a later
 * version can still ingest it — and the delivery counts as committed so the queue moves on.
 * Either way this returns only after the commit, so the caller may ack.
 */
export function ingestDelivery(
  db: Database,
  plaintext: EnvelopePlaintext,
  options: { relaySeq: number; receivedAt: number; now: number },
): IngestResult {
  const text = plaintext.kind === 'meta' ? Buffer.from(plaintext.body, 'base64url').toString('utf8') : plaintext.body;
  let reason: string | null = null;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    reason = 'not JSON';
  }
  const parsed = reason === null ? WebhookSchema.safeParse(body) : null;
  if (parsed && !parsed.success) reason = `not a webhook: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`).join('; ')}`;
  if (!parsed?.success) {
    stmt(
      db,
      `INSERT INTO dead_letters (relay_seq, received_at, stored_at, reason, payload)
       SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE relay_seq IS ? AND payload = ?)`,
    ).run(options.relaySeq, options.receivedAt, options.now, reason ?? 'unreadable', text, options.relaySeq, text);
    return { ...emptyApplyResult(), relaySeq: options.relaySeq, deadLettered: true };
  }
  return { ...applyWebhook(db, parsed.data, { receivedAt: options.receivedAt }), relaySeq: options.relaySeq, deadLettered: false };
}
