// The chain verified in worker threads gives the verdict of one walk on the core's thread, whatever
// was done to the file, and leaves the core's thread free while the workers read.
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../testing/testDb';
import { appendAudit, verifyAuditChain } from './auditLog';
import { createAuditHandlers } from './handlers';
import { splitChain, verifyChain } from './verifyChain';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const read = (i: number) => ({
  userId: `user-${i % 3}`,
  displayName: `User ${i % 3}`,
  role: 'receptionist',
  sessionId: 's_1',
  action: 'read' as const,
  method: 'messages.list',
  contactIds: [i],
  origin: 'test',
  outcome: 'ok' as const,
});

function logOf(entries: number): TestDb {
  const db = createTestDb();
  db.db.transaction(() => {
    for (let i = 1; i <= entries; i++) appendAudit(db.db, read(i), 1000 + i);
  })();
  return db;
}

/** As an attacker with the key would: the append-only triggers dropped first. */
function tamper(db: TestDb['db'], sql: string): void {
  db.exec('DROP TRIGGER IF EXISTS audit_log_append_only_update; DROP TRIGGER IF EXISTS audit_log_append_only_delete;');
  db.pragma('foreign_keys = OFF');
  db.exec(sql);
}

const inWorkers = (db: TestDb) => verifyChain({ db: db.db, database: { path: db.path, key: db.key } }, { workers: 4, inlineBelow: 0 });

describe('chain verification in workers', () => {
  it('splits 1..head into contiguous ranges that cover it once', () => {
    expect(splitChain(10, 4)).toEqual([
      { from: 1, to: 2 },
      { from: 3, to: 5 },
      { from: 6, to: 7 },
      { from: 8, to: 10 },
    ]);
    expect(splitChain(2, 4)).toEqual([
      { from: 1, to: 1 },
      { from: 2, to: 2 },
    ]);
  });

  // 40 entries in 4 ranges: 1-10, 11-20, 21-30, 31-40. Each case touches a range's edge or inside.
  const cases: { name: string; sql: string; brokenAt: number | null; reason?: RegExp }[] = [
    { name: 'an intact log', sql: 'SELECT 1', brokenAt: null },
    { name: 'an edited entry inside a range', sql: `UPDATE audit_log SET contact_ids = '[99]' WHERE seq = 15`, brokenAt: 15, reason: /altered/ },
    { name: 'an edited first entry of a range', sql: `UPDATE audit_log SET user_id = 'mallory' WHERE seq = 21`, brokenAt: 21, reason: /altered/ },
    { name: 'an edited last entry of a range', sql: `UPDATE audit_log SET user_id = 'mallory' WHERE seq = 20`, brokenAt: 20, reason: /altered/ },
    { name: 'a rehashed entry (its own hash made to match)', sql: `UPDATE audit_log SET hash = '${'f'.repeat(64)}' WHERE seq = 20`, brokenAt: 20, reason: /altered/ },
    { name: 'a deleted entry inside a range', sql: `DELETE FROM audit_log WHERE seq = 25`, brokenAt: 25, reason: /missing/ },
    { name: 'a deleted first entry of a range', sql: `DELETE FROM audit_log WHERE seq = 31`, brokenAt: 31, reason: /missing/ },
    { name: 'a deleted last entry of a range', sql: `DELETE FROM audit_log WHERE seq = 10`, brokenAt: 10, reason: /missing/ },
    { name: 'a deleted first entry', sql: `DELETE FROM audit_log WHERE seq = 1`, brokenAt: 1, reason: /missing/ },
    {
      name: 'two entries swapped across a range edge',
      sql: `UPDATE audit_log SET seq = 1000000 WHERE seq = 20; UPDATE audit_log SET seq = 20 WHERE seq = 21; UPDATE audit_log SET seq = 21 WHERE seq = 1000000;`,
      brokenAt: 20,
      reason: /does not follow/,
    },
    {
      name: 'an entry taken out and the next one relinked over it',
      sql: `UPDATE audit_log SET prev_hash = (SELECT prev_hash FROM audit_log WHERE seq = 11) WHERE seq = 12; DELETE FROM audit_log WHERE seq = 11;`,
      brokenAt: 11,
      reason: /missing/,
    },
  ];
  for (const c of cases) {
    it(`names the same entry as one walk: ${c.name}`, async () => {
      t = logOf(40);
      tamper(t.db, c.sql);
      const inline = verifyAuditChain(t.db);
      expect(inline.ok ? null : inline.brokenAt).toBe(c.brokenAt);
      if (!inline.ok && c.reason) expect(inline.reason).toMatch(c.reason);
      expect(await inWorkers(t)).toEqual(inline);
    }, 30_000);
  }

  it('a link broken exactly at a range edge is named by the stitch', async () => {
    t = logOf(40);
    // Entry 21 chained to something else, its own hash recomputed would still fail: the stitch names it first.
    tamper(t.db, `UPDATE audit_log SET prev_hash = '${'a'.repeat(64)}' WHERE seq = 21`);
    const verdict = await inWorkers(t);
    expect(verdict).toEqual({ ok: false, entries: 21, brokenAt: 21, reason: 'entry 21 does not follow entry 20' });
    expect(verdict).toEqual(verifyAuditChain(t.db));
  }, 30_000);

  it('an empty log is intact', async () => {
    t = createTestDb();
    expect(await inWorkers(t)).toEqual({ ok: true, entries: 0, head: null });
  });

  it('keeps the core answering while it verifies: another call finishes first', async () => {
    t = logOf(30_000);
    const { privateKey } = generateKeyPairSync('ed25519');
    const handlers = createAuditHandlers({
      db: t.db,
      now: () => Date.now(),
      link: {} as never,
      installationId: 'test',
      signing: { privateKey, publicKeyRaw: '' },
      database: { path: t.path, key: t.key },
      verify: { workers: 2, inlineBelow: 0 },
    });
    const order: string[] = [];
    const ctx = {} as never;
    const verify = Promise.resolve(handlers['audit.verify']({ withRelayWitness: false }, ctx)).then((v) => {
      order.push('verify');
      return v;
    });
    const query = Promise.resolve(handlers['audit.query']({ filter: {}, limit: 10 }, ctx)).then(() => order.push('query'));
    await Promise.all([verify, query]);
    expect(order).toEqual(['query', 'verify']);
    expect((await verify).chain).toEqual({ ok: true, entries: 30_000, headSeq: 30_000, prunedThrough: null });
  }, 60_000);
});
