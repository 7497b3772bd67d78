import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, seedThread, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0060-backups', () => {
  it('adds the backup key, the run journal and the erasure ledger to a version-50 database and keeps its data', () => {
    t = createTestDb({ version: 50 });
    const { db } = t;
    seedThread(db);
    for (const table of ['backup_key', 'backup_runs', 'erasure_ledger']) expect(() => db.prepare(`SELECT count(*) FROM ${table}`).get()).toThrow(/no such table/);

    expect(migrate(db, { target: 60 }).applied).toEqual([60]);
    expect(schemaVersion(db)).toBe(60);
    expect(db.prepare('SELECT text FROM messages WHERE id = 1').get()).toEqual({ text: 'Termin' });
    for (const table of ['backup_key', 'backup_runs', 'erasure_ledger']) expect(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get()).toBe(0);
    // The run journal is looked up by outcome (the admin's status).
    expect(db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'backup_runs'`).pluck().all()).toContain('backup_runs_by_outcome');
  });

  it('refuses rows the backup code could not read back: a second key, an unknown trigger or outcome, a ledger that is not JSON', () => {
    t = createTestDb({ version: 60 });
    const { db } = t;
    const key = db.prepare('INSERT INTO backup_key (id, salt, iv, wrapped, created_at) VALUES (?, ?, ?, ?, 1)');
    key.run(1, 's', 'i', 'w');
    expect(() => key.run(2, 's', 'i', 'w')).toThrow(/CHECK constraint/);
    expect(() => key.run(1, 's', 'i', 'w')).toThrow(/UNIQUE|PRIMARY KEY/);

    const run = db.prepare('INSERT INTO backup_runs (started_at, trigger, outcome) VALUES (1, ?, ?)');
    for (const trigger of ['schedule', 'manual', 'restore', 'migration', 'erasure', 'console']) run.run(trigger, 'ok');
    run.run('schedule', 'missed');
    run.run('manual', 'failed');
    expect(() => run.run('cron', 'ok')).toThrow(/CHECK constraint/);
    expect(() => run.run('manual', 'partial')).toThrow(/CHECK constraint/);
    // STRICT: a number where text belongs is refused, not coerced.
    expect(() => db.prepare(`INSERT INTO backup_runs (started_at, trigger, outcome) VALUES ('yesterday', 'manual', 'ok')`).run()).toThrow(/cannot store TEXT value in INTEGER column/);

    const ledger = db.prepare('INSERT INTO erasure_ledger (identifiers_hash, erased_at, erased_by) VALUES (?, 1, ?)');
    ledger.run(JSON.stringify(['ab'.repeat(32)]), 'u_admin');
    expect(() => ledger.run('not json', 'u_admin')).toThrow(/CHECK constraint/);
    expect(db.prepare('SELECT count(*) FROM erasure_ledger').pluck().get()).toBe(1);
  });
});
