import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

const TEXT_CONTENT = '{"type":"text"}';
let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0080-message-shapes', () => {
  it('keeps a version-70 database as it was: its messages stay unedited, undeleted and not from the phone, its dead letters stay', () => {
    t = createTestDb({ version: 70 });
    const { db } = t;
    seedThread(db, TEXT_CONTENT);
    db.prepare(`INSERT INTO dead_letters (id, relay_seq, received_at, stored_at, reason, payload) VALUES (1, 7, 2, 3, 'unparseable', '{}')`).run();
    expect(() => db.prepare('SELECT count(*) FROM message_revisions').get()).toThrow(/no such table/);

    expect(migrate(db, { target: 80 }).applied).toEqual([80]);
    expect(schemaVersion(db)).toBe(80);
    expect(db.prepare('SELECT text, content_json, edited_at, revoked_at, origin FROM messages WHERE id = 1').get()).toEqual({
      text: 'Termin',
      content_json: '{"type":"text"}',
      edited_at: null,
      revoked_at: null,
      origin: null,
    });
    expect(db.prepare('SELECT relay_seq, reason FROM dead_letters').all()).toEqual([{ relay_seq: 7, reason: 'unparseable' }]);
    for (const table of ['message_revisions', 'webhook_errors', 'ingest_counts']) {
      expect(db.prepare(`SELECT count(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    }
    // The admin's counts by reason, and the lookup of edits waiting for their message, are index walks.
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan('SELECT reason, count(*) FROM dead_letters GROUP BY reason')).toMatch(/dead_letters_by_reason/);
    expect(plan(`SELECT id FROM message_revisions WHERE original_wamid = 'wamid.A' AND message_id IS NULL`)).toMatch(/message_revisions_pending/);
  });

  it('keeps an edit that waits for its message, links it once applied, and removes it with its message', () => {
    t = createTestDb({ version: 70 });
    const { db } = t;
    seedThread(db, TEXT_CONTENT);
    migrate(db, { target: 80 });
    const revision = db.prepare(
      `INSERT INTO message_revisions (conversation_id, direction, original_wamid, event_wamid, kind, new_text, changed_at, received_at)
       VALUES (1, 'inbound', ?, ?, ?, ?, 9, 10)`,
    );
    revision.run('wamid.A', 'wamid.EDIT-1', 'edit', 'Termin morgen');
    revision.run('wamid.LATER', 'wamid.EDIT-2', 'edit', 'Noch nicht da');
    db.prepare(`UPDATE message_revisions SET message_id = 1, previous_text = 'Termin', applied_at = 11 WHERE event_wamid = 'wamid.EDIT-1'`).run();
    db.prepare(`UPDATE messages SET text = 'Termin morgen', edited_at = 9 WHERE id = 1`).run();
    expect(db.prepare('SELECT event_wamid, message_id, previous_text FROM message_revisions ORDER BY id').all()).toEqual([
      { event_wamid: 'wamid.EDIT-1', message_id: 1, previous_text: 'Termin' },
      { event_wamid: 'wamid.EDIT-2', message_id: null, previous_text: null },
    ]);

    // The history goes with its message (retention, erasure); the waiting edit stays with its thread.
    db.prepare('DELETE FROM messages WHERE id = 1').run();
    expect(db.prepare('SELECT event_wamid FROM message_revisions').pluck().all()).toEqual(['wamid.EDIT-2']);
    db.prepare('DELETE FROM conversations WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) AS n FROM message_revisions').get()).toEqual({ n: 0 });
  });

  it('refuses rows that break the rules and keeps what was there', () => {
    t = createTestDb({ version: 70 });
    const { db } = t;
    seedThread(db, TEXT_CONTENT);
    migrate(db, { target: 80 });
    const revision = db.prepare(
      `INSERT INTO message_revisions (conversation_id, direction, original_wamid, event_wamid, kind, changed_at, received_at) VALUES (?, ?, 'wamid.A', ?, ?, 9, 10)`,
    );
    revision.run(1, 'inbound', 'wamid.E', 'revoke');
    // One row per event: a redelivered edit or revoke is not kept twice.
    expect(() => revision.run(1, 'inbound', 'wamid.E', 'edit')).toThrow(/UNIQUE/);
    expect(() => revision.run(1, 'inbound', 'wamid.F', 'delete')).toThrow(/CHECK/);
    expect(() => revision.run(1, 'sideways', 'wamid.G', 'edit')).toThrow(/CHECK/);
    expect(() => revision.run(99, 'inbound', 'wamid.H', 'edit')).toThrow(/FOREIGN KEY/);
    expect(db.prepare('SELECT event_wamid, kind FROM message_revisions').all()).toEqual([{ event_wamid: 'wamid.E', kind: 'revoke' }]);

    // Only the clinic's phone is a known origin.
    expect(() => db.prepare(`UPDATE messages SET origin = 'web' WHERE id = 1`).run()).toThrow(/CHECK/);
    db.prepare(`UPDATE messages SET origin = 'phone' WHERE id = 1`).run();
    expect(db.prepare('SELECT origin FROM messages WHERE id = 1').pluck().get()).toBe('phone');

    // Meta's errors once per digest; running counts once per name.
    const error = db.prepare(`INSERT INTO webhook_errors (digest, scope, code, title, received_at) VALUES (?, 'value', ?, 'Rate limit hit', 5)`);
    error.run('d1', 130429);
    expect(() => error.run('d1', 131000)).toThrow(/UNIQUE/);
    expect(() => error.run('d2', 'not a code')).toThrow(/cannot store TEXT value in INTEGER column/);
    const count = db.prepare(`INSERT INTO ingest_counts (name, count, last_at) VALUES (?, 1, 5)`);
    count.run('unsupported:unknown_type');
    expect(() => count.run('unsupported:unknown_type')).toThrow(/UNIQUE|PRIMARY KEY/);
    expect(db.prepare('SELECT code FROM webhook_errors').pluck().all()).toEqual([130429]);
    expect(db.prepare('SELECT name, count FROM ingest_counts').all()).toEqual([{ name: 'unsupported:unknown_type', count: 1 }]);
  });
});
