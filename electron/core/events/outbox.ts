// The events outbox (`event_outbox`, migration 0100): the core appends events in the transaction
// of the change they describe; the events worker expands each row into one delivery per subscriber.
import { randomFillSync } from 'node:crypto';
import { EVENT_SCHEMA } from '../../../shared/rpc/events';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

/** Message text is cut to this in a body; a body never exceeds `MAX_BODY_BYTES`. */
export const MAX_TEXT_CHARS = 4096;
export const MAX_BODY_BYTES = 64 * 1024;
/** Outbox rows expanded in one transaction at most: the core's next commit waits for one at most. */
const EXPAND_ROWS = 4;

/** One event as queued: everything its body is made of, and who may receive it. */
export interface OutboxEvent {
  id: string;
  type: string;
  at: number;
  conversationId: number | null;
  contactId: number | null;
  data: Record<string, unknown>;
  /** Present only when a subscriber that allows message text wants this event. */
  text?: string;
  /** One subscriber only (`events.sendTest`). */
  subscriptionId?: number;
}

/**
 * `evt_` + the time (ms, hex) + 80 random bits: unique, and rising, so each new row lands at the
 * end of the unique index rather than on a random page of it.
 */
export function newEventId(at: number): string {
  // Drawn from a pool filled 128 ids at a time: one call into the CSPRNG per ingest batch, not per event.
  if (poolAt + ID_RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += ID_RANDOM_BYTES;
  return `evt_${at.toString(16).padStart(12, '0')}${pool.toString('hex', poolAt - ID_RANDOM_BYTES, poolAt)}`;
}
const ID_RANDOM_BYTES = 10;
const pool = Buffer.alloc(128 * ID_RANDOM_BYTES);
let poolAt = pool.length;

export function appendToOutbox(db: Database, events: readonly OutboxEvent[], at: number): void {
  if (events.length > 0) stmt(db, 'INSERT INTO event_outbox (events, created_at) VALUES (?, ?)').run(JSON.stringify(events), at);
}

/** Drops an erased patient's events that were not expanded yet; returns how many. */
export function forgetInOutbox(db: Database, contactId: number): number {
  let dropped = 0;
  for (const row of stmt(db, 'SELECT id, events FROM event_outbox').all() as { id: number; events: string }[]) {
    const events = JSON.parse(row.events) as OutboxEvent[];
    const kept = events.filter((e) => e.contactId !== contactId);
    if (kept.length === events.length) continue;
    dropped += events.length - kept.length;
    if (kept.length === 0) stmt(db, 'DELETE FROM event_outbox WHERE id = ?').run(row.id);
    else stmt(db, 'UPDATE event_outbox SET events = ? WHERE id = ?').run(JSON.stringify(kept), row.id);
  }
  return dropped;
}

const orderingKey = (e: OutboxEvent): string => (e.type === 'test' ? 'test' : e.conversationId !== null ? `conversation:${e.conversationId}` : e.contactId !== null ? `contact:${e.contactId}` : 'clinic');

function bodyOf(e: OutboxEvent, withText: boolean, installationId: string): string {
  const data = withText && typeof e.text === 'string' ? { ...e.data, text: e.text.slice(0, MAX_TEXT_CHARS) } : e.data;
  const envelope = { schema: EVENT_SCHEMA, id: e.id, type: e.type, occurredAt: new Date(e.at).toISOString(), installationId, conversationId: e.conversationId };
  const body = JSON.stringify({ ...envelope, data });
  return Buffer.byteLength(body) <= MAX_BODY_BYTES ? body : JSON.stringify({ ...envelope, data: e.data, truncated: true });
}

interface SubscriptionRow {
  id: number;
  events_json: string;
  include_text: 0 | 1;
  enabled: 0 | 1;
  created_at: number;
}

/**
 * Turns outbox rows into deliveries, oldest first: one per subscriber that wanted the event when
 * it was queued and still does (a test event: its one subscriber), the body made once and signed
 * later byte for byte. Rows and their deliveries change in one transaction. Returns rows taken.
 */
export function expandOutbox(db: Database, installationId: string): number {
  return db
    .transaction((): number => {
      const rows = stmt(db, `SELECT id, events FROM event_outbox ORDER BY id LIMIT ${EXPAND_ROWS}`).all() as { id: number; events: string }[];
      if (rows.length === 0) return 0;
      const subs = (stmt(db, 'SELECT id, events_json, include_text, enabled, created_at FROM event_subscriptions ORDER BY id').all() as SubscriptionRow[]).map((s) => ({
        ...s,
        wants: new Set(JSON.parse(s.events_json) as string[]),
      }));
      const insert = stmt(db, `INSERT OR IGNORE INTO event_deliveries (subscription_id, event_id, type, ordering_key, contact_id, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
      for (const row of rows) {
        for (const e of JSON.parse(row.events) as OutboxEvent[]) {
          const bodies: (string | undefined)[] = [];
          for (const s of subs) {
            if (e.subscriptionId !== undefined ? s.id !== e.subscriptionId : s.enabled !== 1 || !s.wants.has(e.type) || s.created_at > e.at) continue;
            const withText = s.include_text;
            insert.run(s.id, e.id, e.type, orderingKey(e), e.contactId, (bodies[withText] ??= bodyOf(e, withText === 1, installationId)), e.at, e.at);
          }
        }
      }
      stmt(db, 'DELETE FROM event_outbox WHERE id <= ?').run(rows.at(-1)!.id);
      return rows.length;
    })
    .immediate();
}
