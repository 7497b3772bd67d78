import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

function seedReactedThread(db: TestDb['db']): void {
  seedThread(db, '{"type":"text"}');
  // A patient's reaction from before the desk could send its own.
  db.prepare(`INSERT INTO reactions (target_wamid, contact_id, from_business, emoji, reaction_wamid, reacted_at) VALUES ('wamid.OUT', 1, 0, '👍', 'wamid.R1', 7)`).run();
}

describe('migration 0100-clinic-reactions', () => {
  it("keeps a version-90 database's reactions as Meta reported them (no send state) and adds the desk's columns", () => {
    t = createTestDb({ version: 90 });
    const { db } = t;
    seedReactedThread(db);
    expect(() => db.prepare('SELECT status FROM reactions').all()).toThrow(/no such column/);

    expect(migrate(db, { target: 100 }).applied).toEqual([100]);
    expect(schemaVersion(db)).toBe(100);
    expect(db.prepare('SELECT emoji, from_business, reaction_wamid, status, status_at, error_code, error_title, author_user_id FROM reactions').all()).toEqual([
      { emoji: '👍', from_business: 0, reaction_wamid: 'wamid.R1', status: null, status_at: null, error_code: null, error_title: null, author_user_id: null },
    ]);
    // A failed status webhook is matched to its reaction by the send's wamid: an index walk.
    const plan = (db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM reactions WHERE reaction_wamid = 'wamid.R1'`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan).toMatch(/reactions_by_reaction_wamid/);
  });

  it("keeps one clinic reaction per message (a change replaces it) and refuses a send state that does not exist", () => {
    t = createTestDb({ version: 90 });
    const { db } = t;
    seedReactedThread(db);
    migrate(db, { target: 100 });
    const add = db.prepare(
      `INSERT INTO reactions (target_wamid, contact_id, from_business, emoji, reacted_at, status, status_at, author_user_id) VALUES ('wamid.A', 1, 1, ?, ?, ?, ?, 'u1')`,
    );
    add.run('❤️', 10, 'pending', 10);
    expect(() => add.run('👍', 11, 'pending', 11)).toThrow(/UNIQUE/);
    expect(() => db.prepare(`UPDATE reactions SET status = 'delivered' WHERE target_wamid = 'wamid.A'`).run()).toThrow(/CHECK/);
    expect(db.prepare(`SELECT emoji, status FROM reactions WHERE from_business = 1`).all()).toEqual([{ emoji: '❤️', status: 'pending' }]);
    // It goes with its patient, like the patient's own reactions.
    db.prepare('DELETE FROM contacts WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) AS n FROM reactions').get()).toEqual({ n: 0 });
  });
});
