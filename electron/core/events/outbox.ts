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

/**
 * What an ingest batch queues, in the batch's order: ids only (`r`: a new message, `s`: a status
 * change of one), each with its wamid, so a message erased before the worker got to it (and an id
 * SQLite then gave to another message) yields no event. The worker reads the rest from the stored
 * rows: the core's thread pays one insert per batch and no read, object or body per event.
 */
export type IngestItem = ['r', messageId: number, wamid: string] | ['s', messageId: number, wamid: string, status: string];

/** An outbox row is a list of whole events (bookings, handlers, tests) or an ingest batch's ids. */
type OutboxRow = OutboxEvent[] | { at: number; ingest: IngestItem[] };

export function appendIngestToOutbox(db: Database, items: readonly IngestItem[], at: number): void {
  if (items.length > 0) stmt(db, 'INSERT INTO event_outbox (events, created_at) VALUES (?, ?)').run(JSON.stringify({ at, ingest: items }), at);
}

interface StoredMessage {
  direction: string;
  type: string;
  text: string | null;
  received_at: number;
  conversation_id: number;
  contact_id: number;
}

/** A `message.received` event's data: the same whether the worker or the core builds it. */
export function receivedData(messageId: number, m: { type: string; received_at: number; contact_id: number }, conversationId: number): Record<string, unknown> {
  return { conversationId, contactId: m.contact_id, messageId, messageType: m.type, receivedAt: new Date(m.received_at).toISOString() };
}

/**
 * An ingest row's events as the stored rows say now; what was erased since is left out. Each
 * message read goes into `read` (id, wamid), to be checked again when the deliveries are written.
 */
function ingestEvents(db: Database, at: number, items: readonly IngestItem[], read: [number, string][]): OutboxEvent[] {
  const message = stmt(db, 'SELECT m.direction, m.type, m.text, m.received_at, m.conversation_id, c.contact_id FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ? AND m.wamid = ?');
  const events: OutboxEvent[] = [];
  for (const item of items) {
    const m = message.get(item[1], item[2]) as StoredMessage | undefined;
    if (!m) continue;
    read.push([item[1], item[2]]);
    const conversationId = m.conversation_id;
    const contactId = m.contact_id;
    const messageId = item[1];
    if (item[0] === 'r') {
      if (m.direction !== 'inbound') continue;
      const event: OutboxEvent = { id: newEventId(at), type: 'message.received', at, conversationId, contactId, data: receivedData(messageId, m, conversationId) };
      if (typeof m.text === 'string') event.text = m.text;
      events.push(event);
    } else events.push({ id: newEventId(at), type: 'message.status', at, conversationId, contactId, data: { conversationId, messageId, status: item[3] } });
  }
  return events;
}

/** Drops an erased patient's events that were not expanded yet; returns how many. */
export function forgetInOutbox(db: Database, contactId: number): number {
  let dropped = 0;
  for (const row of stmt(db, 'SELECT id, events FROM event_outbox').all() as { id: number; events: string }[]) {
    const events = JSON.parse(row.events) as OutboxRow;
    // An ingest row names messages by id and wamid: the erasure deleted them, so they yield nothing.
    if (!Array.isArray(events)) continue;
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

/** The next outbox rows turned into deliveries, read outside any write transaction. */
export interface Expansion {
  rows: { id: number; events: string }[];
  /** The subscriptions as they were read. */
  subscriptions: string;
  /** The messages the bodies were made from (id, wamid). */
  messages: [number, string][];
  /** `event_deliveries` rows: subscription, event id, type, ordering key, contact, body, created, due. */
  deliveries: (string | number | null)[][];
}

export function planExpansion(db: Database, installationId: string): Expansion | null {
  const rows = stmt(db, `SELECT id, events FROM event_outbox ORDER BY id LIMIT ${EXPAND_ROWS}`).all() as { id: number; events: string }[];
  if (rows.length === 0) return null;
  const subRows = stmt(db, 'SELECT id, events_json, include_text, enabled, created_at FROM event_subscriptions ORDER BY id').all() as SubscriptionRow[];
  const subs = subRows.map((s) => ({ ...s, wants: new Set(JSON.parse(s.events_json) as string[]) }));
  const messages: [number, string][] = [];
  const deliveries: (string | number | null)[][] = [];
  for (const row of rows) {
    const stored = JSON.parse(row.events) as OutboxRow;
    for (const e of Array.isArray(stored) ? stored : ingestEvents(db, stored.at, stored.ingest, messages)) {
      const bodies: (string | undefined)[] = [];
      for (const s of subs) {
        if (e.subscriptionId !== undefined ? s.id !== e.subscriptionId : s.enabled !== 1 || !s.wants.has(e.type) || s.created_at > e.at) continue;
        const withText = s.include_text;
        deliveries.push([s.id, e.id, e.type, orderingKey(e), e.contactId, (bodies[withText] ??= bodyOf(e, withText === 1, installationId)), e.at, e.at]);
      }
    }
  }
  return { rows, subscriptions: JSON.stringify(subRows), messages, deliveries };
}

/** Whether nothing a plan was made from changed since: the same outbox rows and subscriptions, every message still stored. */
function stillAsPlanned(db: Database, plan: Expansion): boolean {
  const rows = stmt(db, 'SELECT id, events FROM event_outbox WHERE id <= ? ORDER BY id').all(plan.rows.at(-1)!.id) as { id: number; events: string }[];
  if (rows.length !== plan.rows.length || rows.some((r, i) => r.id !== plan.rows[i]!.id || r.events !== plan.rows[i]!.events)) return false;
  if (JSON.stringify(stmt(db, 'SELECT id, events_json, include_text, enabled, created_at FROM event_subscriptions ORDER BY id').all()) !== plan.subscriptions) return false;
  if (plan.messages.length === 0) return true;
  const stored = stmt(db, `SELECT count(*) FROM json_each(?) j JOIN messages m ON m.id = json_extract(j.value, '$[0]') AND m.wamid = json_extract(j.value, '$[1]')`).pluck().get(JSON.stringify(plan.messages));
  return stored === plan.messages.length;
}

/**
 * Turns outbox rows into deliveries, oldest first: one per subscriber that wanted the event when
 * it was queued and still does (a test event: its one subscriber), the body made once and signed
 * later byte for byte. The rows are read and the bodies made before the write transaction, which
 * only checks that nothing they came from changed meanwhile (an erasure, a subscription edited;
 * then it reads them again inside) and writes: the write lock that ingest waits for is held for
 * the inserts alone. Rows and their deliveries change in one transaction. Returns rows taken.
 */
export function expandOutbox(db: Database, installationId: string): number {
  const plan = planExpansion(db, installationId);
  return plan ? writeExpansion(db, plan, installationId) : 0;
}

/** Writes a plan's deliveries, or what the rows say now if something it was made from changed. */
export function writeExpansion(db: Database, plan: Expansion, installationId: string): number {
  return db
    .transaction((): number => {
      const current = stillAsPlanned(db, plan) ? plan : planExpansion(db, installationId);
      if (!current) return 0;
      const insert = stmt(db, `INSERT OR IGNORE INTO event_deliveries (subscription_id, event_id, type, ordering_key, contact_id, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
      for (const d of current.deliveries) insert.run(...d);
      stmt(db, 'DELETE FROM event_outbox WHERE id <= ?').run(current.rows.at(-1)!.id);
      return current.rows.length;
    })
    .immediate();
}
