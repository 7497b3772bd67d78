import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0110-event-outbox', () => {
  it('keeps a version-100 database as it was (subscriptions and their deliveries) and adds the outbox', () => {
    t = createTestDb({ version: 100 });
    const { db } = t;
    db.prepare(`INSERT INTO event_subscriptions (id, url, events_json, secret_sealed, created_by, created_at) VALUES (1, 'https://x', '["test"]', 's', 'u', 1)`).run();
    db.prepare(`INSERT INTO event_deliveries (subscription_id, event_id, type, ordering_key, body, created_at) VALUES (1, 'e1', 'test', 'test', '{}', 1)`).run();
    expect(migrate(db, { target: 110 }).applied).toEqual([110]);
    expect(schemaVersion(db)).toBe(110);
    expect(db.prepare('SELECT event_id, status FROM event_deliveries').all()).toEqual([{ event_id: 'e1', status: 'pending' }]);
    db.prepare(`INSERT INTO event_outbox (events, created_at) VALUES ('[]', 2)`).run();
    expect(() => db.prepare(`INSERT INTO event_outbox (events, created_at) VALUES (NULL, 2)`).run()).toThrow(/NOT NULL/);
    expect(db.prepare('SELECT count(*) FROM event_outbox').pluck().get()).toBe(1);
  });
});
