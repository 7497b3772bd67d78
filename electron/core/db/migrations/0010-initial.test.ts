import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0010-initial', () => {
  it('builds every table from an empty database and keeps what is written', () => {
    t = createTestDb({ version: 0 });
    const { db } = t;
    expect(schemaVersion(db)).toBe(0);
    expect(migrate(db, { target: 10 }).applied).toEqual([10]);
    expect(schemaVersion(db)).toBe(10);

    db.prepare(`INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (1, '15550001', 'Zoë', 1, 1)`).run();
    db.prepare(`INSERT INTO contacts (id, user_id, created_at, updated_at) VALUES (2, 'DE.123', 1, 1)`).run();
    expect(() => db.prepare(`INSERT INTO contacts (created_at, updated_at) VALUES (1, 1)`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO contacts (wa_id, created_at, updated_at) VALUES ('15550001', 1, 1)`).run()).toThrow(/UNIQUE/);

    db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (1, 1, '110', 5, 1, 1)`).run();
    db.prepare(
      `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
       VALUES (1, 1, 'wamid.A', 'inbound', 'text', 'Müller Termin verschieben', '{}', 5, 6, 'received')`,
    ).run();
    db.prepare(
      `INSERT INTO messages (id, conversation_id, direction, type, content_json, sent_at, received_at, status)
       VALUES (2, 1, 'outbound', 'text', '{}', 7, 7, 'pending')`,
    ).run();
    // Two outbound messages not yet accepted by Meta both have no wamid.
    db.prepare(
      `INSERT INTO messages (id, conversation_id, direction, type, content_json, sent_at, received_at, status)
       VALUES (3, 1, 'outbound', 'text', '{}', 8, 8, 'pending')`,
    ).run();
    db.prepare(`INSERT INTO message_statuses (wamid, status, status_at, raw_json, received_at) VALUES ('wamid.A', 'read', 1, '{}', 1)`).run();
    expect(() =>
      db.prepare(`INSERT INTO message_statuses (wamid, status, status_at, raw_json, received_at) VALUES ('wamid.A', 'read', 2, '{}', 2)`).run(),
    ).toThrow(/UNIQUE/);
    db.prepare(`INSERT INTO reactions (target_wamid, contact_id, from_business, emoji, reacted_at) VALUES ('wamid.A', 1, 0, '👍', 1)`).run();
    db.prepare(
      `INSERT INTO outbox (id, message_id, kind, request_json, state, next_attempt_at, created_at, updated_at)
       VALUES ('0b0e7a8e-0000-4000-8000-000000000001', 2, 'text', '{}', 'queued', 0, 1, 1)`,
    ).run();
    db.prepare(
      `INSERT INTO media (media_id, message_id, mime_type, state, content, created_at, updated_at) VALUES ('m1', 1, 'image/jpeg', 'stored', ?, 1, 1)`,
    ).run(Buffer.from([1, 2, 3]));
    db.prepare(
      `INSERT INTO templates (meta_id, name, language, status, components_json, synced_at) VALUES ('t1', 'reminder', 'de', 'APPROVED', '[]', 1)`,
    ).run();
    db.prepare(`INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 1)`).run();

    // Accent-insensitive full-text search kept in step by triggers, scoped by conversation.
    const hit = (q: string) => db.prepare('SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid').pluck().all(q);
    expect(hit('text : (muller)')).toEqual([1]);
    expect(hit('conversation_id : "1" AND text : (termin)')).toEqual([1]);
    db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (2, 2, '110', 5, 1, 1)`).run();
    db.prepare(`UPDATE messages SET conversation_id = 2 WHERE id = 1`).run();
    expect(hit('conversation_id : "1" AND text : (termin)')).toEqual([]);
    expect(hit('conversation_id : "2" AND text : (termin)')).toEqual([1]);
    // Conversation ids are not message text: "2" typed by a person finds nothing here.
    expect(hit('text : ("2")')).toEqual([]);
    db.prepare(`UPDATE messages SET conversation_id = 1 WHERE id = 1`).run();
    expect(hit('muller')).toEqual([1]);
    db.prepare(`UPDATE messages SET text = 'Rezept bitte' WHERE id = 1`).run();
    expect(hit('muller')).toEqual([]);
    expect(hit('rezept')).toEqual([1]);
    db.prepare('DELETE FROM messages WHERE id = 1').run();
    expect(hit('rezept')).toEqual([]);
    // The index agrees with its content table row for row.
    expect(() => db.prepare(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)`).run()).not.toThrow();
    expect(db.prepare('SELECT count(*) FROM media').pluck().get()).toBe(0);
    expect(db.prepare('SELECT message_id FROM outbox').pluck().get()).toBe(2);
    expect(db.prepare(`SELECT value FROM settings WHERE key = 'k'`).pluck().get()).toBe('v');
  });
});
