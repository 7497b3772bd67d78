import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const contactAndConversation = (db: TestDb['db']): void => {
  db.prepare(`INSERT INTO contacts (id, wa_id, display_name, created_at, updated_at) VALUES (1, '31600000001', 'P', 1, 1)`).run();
  db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (1, 1, 'pn', 1, 1, 1)`).run();
};

describe('migration 0090-calendar-events', () => {
  it('keeps a version-80 database as it was and adds bookings, subscriptions and deliveries', () => {
    t = createTestDb({ version: 80 });
    const { db } = t;
    contactAndConversation(db);
    expect(migrate(db, { target: 90 }).applied).toEqual([90]);
    expect(schemaVersion(db)).toBe(90);
    expect(db.prepare('SELECT display_name FROM contacts WHERE id = 1').pluck().get()).toBe('P');
    for (const table of ['calendar_bookings', 'event_subscriptions', 'event_deliveries']) {
      expect(db.prepare('SELECT count(*) FROM ' + table).pluck().get()).toBe(0);
    }
  });

  it('refuses a booking that ends before it starts or is booked twice under one event id, keeps a body only while pending, and a booking goes with its patient', () => {
    t = createTestDb();
    const { db } = t;
    contactAndConversation(db);
    const book = db.prepare(
      `INSERT INTO calendar_bookings (reference, contact_id, conversation_id, calendar_id, calendar_label, google_event_id, start_at, end_at, status, created_by, created_at, updated_at)
       VALUES (?, 1, 1, 'primary', 'Room 1', ?, ?, ?, 'booked', 'u', 1, 1)`,
    );
    book.run('B-1', 'ev1', 1000, 2000);
    expect(() => book.run('B-2', 'ev2', 2000, 1000)).toThrow(/CHECK/);
    expect(() => book.run('B-3', 'ev1', 3000, 4000)).toThrow(/UNIQUE/);
    expect(() => db.prepare(`UPDATE calendar_bookings SET reminder_state = 'maybe'`).run()).toThrow(/CHECK/);

    db.prepare(`INSERT INTO event_subscriptions (id, url, events_json, secret_sealed, created_by, created_at) VALUES (1, 'https://x', '[]', 's', 'u', 1)`).run();
    db.prepare(`INSERT INTO event_deliveries (subscription_id, event_id, type, ordering_key, body, created_at) VALUES (1, 'e1', 'test', 'global', '{}', 1)`).run();
    expect(() => db.prepare(`UPDATE event_deliveries SET status = 'delivered'`).run()).toThrow(/CHECK/);
    db.prepare(`UPDATE event_deliveries SET status = 'delivered', body = NULL`).run();

    db.prepare('DELETE FROM contacts WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) FROM calendar_bookings').pluck().get()).toBe(0);
    db.prepare('DELETE FROM event_subscriptions WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) FROM event_deliveries').pluck().get()).toBe(0);
  });
});
