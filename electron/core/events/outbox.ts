// The events outbox (`event_outbox`, migration 0100): the core appends events in the transaction
// of the change they describe; the events worker expands each row into one delivery per subscriber.
import { randomFillSync } from 'node:crypto';
import { EVENT_SCHEMA } from '../../../shared/rpc/events';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

/** Message text is cut to this in a body; a body never exceeds `MAX_BODY_BYTES`. */
export const MAX_TEXT_CHARS = 4096;
export const MAX_BODY_BYTES = 64 * 1024;

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

/** An event for one subscriber, read from the outbox: its delivery row is written once its outcome is known. */
export interface NewDelivery {
  /** The outbox row it came from: the row is dropped only once all of its deliveries are written. */
  outboxId: number;
  subscriptionId: number;
  eventId: string;
  type: string;
  orderingKey: string;
  contactId: number | null;
  /** Made once here; a retry sends these bytes again. */
  body: string;
  createdAt: number;
}

export interface OutboxReader {
  /**
   * The oldest outbox rows (up to `READ_ROWS`, or `READ_EVENTS` deliveries), as one delivery per
   * subscriber that wanted each event when it was queued and still does (a test event: its one
   * subscriber). Nothing is written: the rows stay until `release`. A pass that did not finish (a
   * failed write) releases nothing, and the next one takes its rows again, less the deliveries
   * written meanwhile. (Always from the oldest row, not "after the last one taken": once the table
   * is empty SQLite hands out low row ids again.)
   */
  take(): { lastId: number; deliveries: NewDelivery[] } | null;
  /** All deliveries of the rows up to `lastId` are written: the rows go (with the text they held). */
  release(lastId: number): void;
}

/** Rows read per pass at most, and deliveries: an erased patient's events read before the erasure are at most this many. */
const READ_ROWS = 64;
const READ_EVENTS = 512;

export function createOutboxReader(db: Database, installationId: string): OutboxReader {
  const rows = db.prepare(`SELECT id, events FROM event_outbox ORDER BY id LIMIT ${READ_ROWS}`);
  const subscriptions = db.prepare('SELECT id, events_json, include_text, enabled, created_at FROM event_subscriptions ORDER BY id');
  const written = db.prepare('SELECT 1 FROM event_deliveries WHERE subscription_id = ? AND event_id = ?').pluck();
  const drop = db.prepare('DELETE FROM event_outbox WHERE id <= ?');
  /** Rows up to here may have deliveries written already (a pass that failed, or a worker before this one). */
  let recheckUpTo = Number(db.prepare('SELECT coalesce(max(id), 0) FROM event_outbox').pluck().get());
  return {
    take() {
      const taken = rows.all() as { id: number; events: string }[];
      if (taken.length === 0) return null;
      const subs = (subscriptions.all() as SubscriptionRow[]).map((sub) => ({ ...sub, wants: new Set(JSON.parse(sub.events_json) as string[]) }));
      const deliveries: NewDelivery[] = [];
      let lastId = 0;
      for (const row of taken) {
        const recheck = row.id <= recheckUpTo;
        for (const e of JSON.parse(row.events) as OutboxEvent[]) {
          const bodies: (string | undefined)[] = [];
          for (const sub of subs) {
            if (e.subscriptionId !== undefined ? sub.id !== e.subscriptionId : sub.enabled !== 1 || !sub.wants.has(e.type) || sub.created_at > e.at) continue;
            if (recheck && written.get(sub.id, e.id) !== undefined) continue;
            const withText = sub.include_text;
            deliveries.push({ outboxId: row.id, subscriptionId: sub.id, eventId: e.id, type: e.type, orderingKey: orderingKey(e), contactId: e.contactId, body: (bodies[withText] ??= bodyOf(e, withText === 1, installationId)), createdAt: e.at });
          }
        }
        lastId = row.id;
        if (deliveries.length >= READ_EVENTS) break;
      }
      recheckUpTo = Math.max(recheckUpTo, lastId);
      return { lastId, deliveries };
    },
    release(lastId) {
      drop.run(lastId);
      // Gone are all rows taken so far, and those a worker before this one may have half written.
      if (lastId >= recheckUpTo) recheckUpTo = 0;
    },
  };
}
