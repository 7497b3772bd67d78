import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0070-privacy', () => {
  it('keeps a version-60 database as it was and adds the privacy tables with the default retention', () => {
    t = createTestDb({ version: 60 });
    const { db } = t;
    db.prepare(`INSERT INTO contacts (id, wa_id, display_name, created_at, updated_at) VALUES (1, '31600000001', 'P', 1, 1)`).run();
    expect(migrate(db, { target: 70 }).applied).toEqual([70]);
    expect(schemaVersion(db)).toBe(70);
    expect(db.prepare('SELECT display_name FROM contacts WHERE id = 1').pluck().get()).toBe('P');
    expect(db.prepare('SELECT kind, days, legal_minimum_days FROM retention_policy ORDER BY kind').all()).toEqual([
      { kind: 'audit', days: 1826, legal_minimum_days: 0 },
      { kind: 'drafts', days: 30, legal_minimum_days: 0 },
      { kind: 'media', days: 365, legal_minimum_days: 0 },
      { kind: 'messages', days: 730, legal_minimum_days: 0 },
    ]);
  });

  it('refuses rows that break the rules: a policy below its legal minimum or over 20 years, an unknown consent status, a hold without reason', () => {
    t = createTestDb();
    const { db } = t;
    db.prepare(`INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '31600000001', 1, 1)`).run();
    expect(() => db.prepare(`UPDATE retention_policy SET legal_minimum_days = 800 WHERE kind = 'messages'`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`UPDATE retention_policy SET days = 7306 WHERE kind = 'messages'`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO consent_events (contact_id, status, source, recorded_at, recorded_by) VALUES (1, 'maybe', 'desk', 1, 'u')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO legal_holds (contact_id, reason, set_by, set_at) VALUES (1, '', 'u', 1)`).run()).toThrow(/CHECK/);
    // Consent and holds go with the contact; the request register stays.
    db.prepare(`INSERT INTO consent_events (contact_id, status, source, recorded_at, recorded_by) VALUES (1, 'opted_in', 'desk', 1, 'u')`).run();
    db.prepare(`INSERT INTO privacy_requests (contact_id, kind, received_at, via, registered_by, due_at) VALUES (1, 'erasure', 1, 'desk', 'u', 2)`).run();
    db.prepare('DELETE FROM contacts WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) FROM consent_events').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM privacy_requests').pluck().get()).toBe(1);
  });
});
