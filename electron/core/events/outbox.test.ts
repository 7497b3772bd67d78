// An ingest batch queues only ids in the outbox; the worker builds each body from the stored rows
// when it expands the row. What those rows say then is what a subscriber gets: the text only where
// the admin allowed it, and nothing about a message erased in between, even when SQLite has given
// its id to another patient's message since.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../testing/testDb';
import { appendIngestToOutbox, expandOutbox, planExpansion, writeExpansion } from './outbox';

let t: TestDb;

beforeEach(() => {
  t = createTestDb();
  const db = t.db;
  db.prepare(`INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '15550001', 1, 1), (2, '15550002', 1, 1)`).run();
  db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (11, 1, '110', 5, 1, 1), (12, 2, '110', 5, 1, 1)`).run();
  const message = db.prepare(
    `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, ?, ?, 'text', ?, '{}', 5, 6, 'received')`,
  );
  message.run(1, 11, 'wamid.A1', 'inbound', 'Termin morgen');
  message.run(2, 11, 'wamid.A2', 'outbound', 'Gerne');
  message.run(3, 12, 'wamid.B1', 'inbound', 'Rezept bitte');
  const subscription = db.prepare(`INSERT INTO event_subscriptions (id, url, events_json, include_text, plain_http, secret_sealed, created_by, created_at) VALUES (?, ?, ?, ?, 0, 'x', 'admin', 1)`);
  subscription.run(1, 'https://pms.example/hook', JSON.stringify(['message.received', 'message.status']), 0);
  subscription.run(2, 'https://dashboard.example/hook', JSON.stringify(['message.received']), 1);
});
afterEach(() => t.cleanup());

interface Queued {
  subscription_id: number;
  type: string;
  ordering_key: string;
  contact_id: number | null;
  body: string;
}
const queued = () => t.db.prepare('SELECT subscription_id, type, ordering_key, contact_id, body FROM event_deliveries ORDER BY id').all() as Queued[];

describe('an ingest batch in the outbox', () => {
  it('becomes one body per event and subscriber, built from the stored message, text only where allowed, in the batch’s order', () => {
    appendIngestToOutbox(t.db, [['r', 1, 'wamid.A1'], ['r', 2, 'wamid.A2'], ['s', 2, 'wamid.A2', 'read'], ['r', 3, 'wamid.B1']], 1000);
    expect(expandOutbox(t.db, 'inst-1')).toBe(1);
    expect(t.db.prepare('SELECT count(*) FROM event_outbox').pluck().get()).toBe(0);

    const rows = queued();
    // The clinic's own message (2) is no `message.received`; its status is, for the subscriber that wants statuses.
    expect(rows.map((r) => [r.subscription_id, r.type, r.ordering_key, r.contact_id])).toEqual([
      [1, 'message.received', 'conversation:11', 1],
      [2, 'message.received', 'conversation:11', 1],
      [1, 'message.status', 'conversation:11', 1],
      [1, 'message.received', 'conversation:12', 2],
      [2, 'message.received', 'conversation:12', 2],
    ]);
    const bodies = rows.map((r) => JSON.parse(r.body) as { id: string; installationId: string; occurredAt: string; data: Record<string, unknown> });
    expect(bodies[0]).toMatchObject({ installationId: 'inst-1', occurredAt: new Date(1000).toISOString(), data: { conversationId: 11, contactId: 1, messageId: 1, messageType: 'text', receivedAt: new Date(6).toISOString() } });
    expect(bodies[0]!.data).not.toHaveProperty('text');
    expect(bodies[1]!.data).toMatchObject({ messageId: 1, text: 'Termin morgen' });
    // One event, one id, whoever receives it.
    expect(bodies[1]!.id).toBe(bodies[0]!.id);
    expect(bodies[2]!.data).toEqual({ conversationId: 11, messageId: 2, status: 'read' });
    expect(rows.filter((r) => r.subscription_id === 1).map((r) => r.body).join('\n')).not.toMatch(/Termin|Rezept/);
  });

  it('yields nothing for a message erased before the worker got to it, even once its id belongs to another patient’s message', () => {
    appendIngestToOutbox(t.db, [['r', 3, 'wamid.B1']], 1000);
    // Patient 2 erased; SQLite hands the highest id, now free, to the next message stored.
    t.db.prepare('DELETE FROM contacts WHERE id = 2').run();
    t.db.prepare(`INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (3, 11, 'wamid.A3', 'inbound', 'text', 'Noch eine Frage', '{}', 7, 8, 'received')`).run();
    expect(expandOutbox(t.db, 'inst-1')).toBe(1);
    expect(queued()).toEqual([]);
  });
});

describe('a row read before an erasure and written after it', () => {
  it('is read again inside the write: the erased patient’s message and text never become a delivery', () => {
    appendIngestToOutbox(t.db, [['r', 1, 'wamid.A1'], ['r', 3, 'wamid.B1']], 1000);
    const plan = planExpansion(t.db, 'inst-1')!;
    expect(plan.deliveries).toHaveLength(4);
    t.db.prepare('DELETE FROM contacts WHERE id = 2').run();
    expect(writeExpansion(t.db, plan, 'inst-1')).toBe(1);
    const rows = queued();
    expect(rows.map((r) => [r.subscription_id, r.contact_id])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(rows.map((r) => r.body).join('\n')).not.toMatch(/Rezept/);
  });

  it('takes a subscription switched off meanwhile as it is now', () => {
    appendIngestToOutbox(t.db, [['r', 1, 'wamid.A1']], 1000);
    const plan = planExpansion(t.db, 'inst-1')!;
    t.db.prepare('UPDATE event_subscriptions SET enabled = 0 WHERE id = 2').run();
    writeExpansion(t.db, plan, 'inst-1');
    expect(queued().map((r) => r.subscription_id)).toEqual([1]);
  });
});
