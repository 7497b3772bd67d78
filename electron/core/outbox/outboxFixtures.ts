import { CodedError } from '../../../shared/errors';
import { recordStatus } from '../db/repo/statuses';
import type { Database } from '../db/types';

/**
 * Test-only: the rows ingest would have written for one patient who wrote to the clinic, so
 * outbox tests (and the SIGKILL child) start from a real conversation.
 */
export function seedConversation(
  db: Database,
  /** `waId: null` with a `userId`: a patient Meta knows only by their business-scoped user id. */
  p: { waId: string | null; userId?: string; phoneNumberId: string; lastInboundAt: number | null; inboundWamid?: string },
): { conversationId: number; contactId: number; inboundMessageId: number | null } {
  const at = p.lastInboundAt ?? 0;
  const contactId = Number(
    db
      .prepare('INSERT INTO contacts (wa_id, user_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
      .run(p.waId, p.userId ?? null, 'Test Patient', at, at).lastInsertRowid,
  );
  const conversationId = Number(
    db
      .prepare(
        `INSERT INTO conversations (contact_id, phone_number_id, unread_count, last_activity_at, last_inbound_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(contactId, p.phoneNumberId, p.lastInboundAt === null ? 0 : 1, at, p.lastInboundAt, at, at).lastInsertRowid,
  );
  let inboundMessageId: number | null = null;
  if (p.lastInboundAt !== null) {
    inboundMessageId = Number(
      db
        .prepare(
          `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
           VALUES (?, ?, 'inbound', 'text', 'Hallo', '{"type":"text","text":{"body":"Hallo"}}', ?, ?, 'received')`,
        )
        .run(conversationId, p.inboundWamid ?? `wamid.IN${conversationId}`, p.lastInboundAt, p.lastInboundAt).lastInsertRowid,
    );
  }
  return { conversationId, contactId, inboundMessageId };
}

/**
 * Test-only: a status from a status webhook, recorded through ingest's own repository (unapplied
 * when no message carries its wamid yet), so reconciliation is exercised without the relay.
 */
export function storeUnappliedStatus(db: Database, status: { id: string; status: string; timestamp: string } & Record<string, unknown>, now: number): void {
  recordStatus(db, { wamid: status.id, status: status.status, statusAt: Number(status.timestamp) * 1000, errorCode: null, errorTitle: null, raw: status }, now);
}

/** Test-only: the error code `fn` throws (null when it does not), for refusals checked one by one. */
export function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof CodedError ? err.code : String(err);
  }
}
