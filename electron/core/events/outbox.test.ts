// The worker's side of the outbox: events are read, not moved, and each delivery's row is written
// once with its outcome. What a crash or a failed write left goes again, less what was written; an
// erasure between the read and the write leaves no row of the patient behind.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../testing/testDb';
import { appendToOutbox, createOutboxReader, forgetInOutbox, newEventId, type NewDelivery, type OutboxEvent } from './outbox';
import { writeOutcomes, type Outcome } from './outcomes';

let t: TestDb;
let subscriptionId: number;
const AT = 1_760_000_000_000;

beforeEach(() => {
  t = createTestDb();
  subscriptionId = Number(
    t.db
      .prepare(`INSERT INTO event_subscriptions (url, events_json, include_text, plain_http, secret_sealed, created_by, created_at) VALUES ('https://pms.example.org/hook', '["booking.created"]', 0, 0, 'sealed', 'admin', ?)`)
      .run(AT - 1000).lastInsertRowid,
  );
});
afterEach(() => t.cleanup());

const event = (contactId: number, n: number): OutboxEvent => ({ id: newEventId(AT), type: 'booking.created', at: AT, conversationId: contactId * 10, contactId, data: { n } });
const delivered = (fresh: NewDelivery): Outcome => ({ kind: 'delivered', fresh, attempt: { statusCode: 204, error: null, latencyMs: 3 }, at: AT + 5 });
const retry = (fresh: NewDelivery): Outcome => ({ kind: 'retry', fresh, attempt: { statusCode: 503, error: 'HTTP 503', latencyMs: 3 }, at: AT + 5, next: AT + 2005 });
const rows = () => t.db.prepare('SELECT event_id, contact_id, status, attempts, body, last_status_code FROM event_deliveries ORDER BY id').all() as { event_id: string; contact_id: number; status: string; attempts: number; body: string | null; last_status_code: number }[];
const outboxRows = () => t.db.prepare('SELECT count(*) FROM event_outbox').pluck().get() as number;

describe('the events outbox, read by the worker', () => {
  it('writes each delivery once with its outcome, keeps a body only for a retry, and drops the rows once all are written', () => {
    const events = [event(7, 0), event(8, 1)];
    appendToOutbox(t.db, events, AT);
    const reader = createOutboxReader(t.db, 'installation-1');
    const taken = reader.take()!;
    expect(taken.deliveries.map((d) => d.eventId)).toEqual(events.map((e) => e.id));
    expect(JSON.parse(taken.deliveries[0]!.body)).toMatchObject({ id: events[0]!.id, installationId: 'installation-1', data: { n: 0 } });
    expect(rows()).toEqual([]); // nothing written by the read

    writeOutcomes(t.db, [{ subscriptionId, outcomes: [delivered(taken.deliveries[0]!), retry(taken.deliveries[1]!)], contactIds: [7] }], AT + 5);
    reader.release(taken.lastId);
    expect(rows()).toEqual([
      { event_id: events[0]!.id, contact_id: 7, status: 'delivered', attempts: 1, body: null, last_status_code: 204 },
      { event_id: events[1]!.id, contact_id: 8, status: 'pending', attempts: 1, body: taken.deliveries[1]!.body, last_status_code: 503 },
    ]);
    expect(outboxRows()).toBe(0);
    expect(reader.take()).toBeNull();

    // Once the table is empty SQLite hands out low row ids again: a new event is still read.
    appendToOutbox(t.db, [event(9, 2)], AT);
    expect(reader.take()!.deliveries.map((d) => d.contactId)).toEqual([9]);
  });

  it('takes again what a failed pass or a crashed worker left, less the deliveries already written', () => {
    const events = [event(7, 0), event(7, 1), event(8, 2)];
    appendToOutbox(t.db, events, AT);
    const reader = createOutboxReader(t.db, 'installation-1');
    const first = reader.take()!;
    writeOutcomes(t.db, [{ subscriptionId, outcomes: [delivered(first.deliveries[0]!)], contactIds: [7] }], AT + 5);
    // No release: the pass failed, or the worker died before it.
    expect(reader.take()!.deliveries.map((d) => d.eventId)).toEqual([events[1]!.id, events[2]!.id]);
    expect(createOutboxReader(t.db, 'installation-1').take()!.deliveries.map((d) => d.eventId)).toEqual([events[1]!.id, events[2]!.id]);
  });

  it('writes no row for a patient erased after the event was read', () => {
    appendToOutbox(t.db, [event(7, 0), event(8, 1)], AT);
    const reader = createOutboxReader(t.db, 'installation-1');
    const taken = reader.take()!;
    expect(forgetInOutbox(t.db, 7)).toBe(1);
    writeOutcomes(t.db, [{ subscriptionId, outcomes: taken.deliveries.map(retry), contactIds: [] }], AT + 5);
    expect(rows().map((r) => r.contact_id)).toEqual([8]);
    expect(JSON.stringify(rows())).not.toContain('"n":0');
  });
});
