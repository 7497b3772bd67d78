import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../testing/testDb';
import { readAnchor } from './anchor';
import { appendAudit, compareWithWitness, makeCheckpoint, verifyAuditChain } from './auditLog';
import { parsePruneReason, PRUNE_METHOD } from './chain';
import { anchorPrune, deletePrunedBatch, pruneDue, type AuditSubject } from './prune';
import { verifyChain } from './verifyChain';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const SYSTEM: AuditSubject = { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, origin: 'core' };
const read = (contactIds: number[]) => ({ userId: 'anna', displayName: 'Anna', role: 'receptionist', sessionId: 's_1', action: 'read' as const, method: 'messages.list', contactIds, origin: 'test', outcome: 'ok' as const });
const CUT = 1_000;

/** Entries 1..10 at 100, 200, …, 1000: entries 1..9 lie before the cut. */
function log(db: TestDb['db']): void {
  for (let i = 1; i <= 10; i += 1) appendAudit(db, read([i % 3]), i * 100);
}

function prune(db: TestDb['db'], cutAt = CUT) {
  const due = pruneDue(db, cutAt);
  if (due.count === 0) return null;
  const anchor = anchorPrune(db, { ...due, cutAt, at: 5_000, by: SYSTEM });
  let removed = 0;
  for (let n; (n = db.transaction(() => deletePrunedBatch(db, anchor.throughSeq, 4))()) > 0; ) removed += n;
  return { anchor, removed };
}

const seqs = (db: TestDb['db']) => db.prepare('SELECT seq FROM audit_log ORDER BY seq').pluck().all() as number[];
/** Rewrites the anchor the way an attacker with the key would: its triggers dropped first. */
function forgeAnchor(db: TestDb['db'], sql: string): void {
  db.exec('DROP TRIGGER audit_anchor_append_only_update; DROP TRIGGER audit_anchor_names_the_chain; DROP TRIGGER audit_log_append_only_delete;');
  db.exec(sql);
}

describe('audit log pruning', () => {
  it('removes exactly the entries before the cut, records it in the chain, and the chain still verifies', async () => {
    t = createTestDb();
    const { db } = t;
    log(db);
    // An entry written under a clock set back, after a newer one: it and everything after it stay.
    appendAudit(db, read([1]), 50);
    const hash9 = db.prepare('SELECT hash FROM audit_log WHERE seq = 9').pluck().get() as string;
    expect(pruneDue(db, CUT)).toEqual({ throughSeq: 9, count: 9, held: 0, more: false });
    // A bounded plan stops at its chunk and says more may follow.
    expect(pruneDue(db, CUT, 4)).toEqual({ throughSeq: 4, count: 4, held: 0, more: true });

    const done = prune(db)!;
    expect(done.removed).toBe(9);
    expect(seqs(db)).toEqual([10, 11, 12]);
    expect(db.prepare('SELECT count(*) FROM audit_contacts WHERE seq <= 9').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM audit_contacts WHERE seq > 9').pluck().get()).toBe(2);
    expect(done.anchor).toEqual({ throughSeq: 9, throughHash: hash9, cutAt: CUT, prunedAt: 5_000, recordSeq: 12 });
    const record = db.prepare('SELECT action, method, reason FROM audit_log WHERE seq = 12').get() as { action: string; method: string; reason: string };
    expect(record).toMatchObject({ action: 'delete', method: PRUNE_METHOD });
    expect(parsePruneReason(record.reason)).toEqual({ throughSeq: 9, throughHash: hash9, count: 9, cutAt: CUT });

    const verdict = verifyAuditChain(db);
    expect(verdict).toMatchObject({ ok: true, entries: 3, head: { seq: 12 }, prunedThrough: 9 });
    // The worker threads' walk starts at the anchor too, and agrees.
    expect(await verifyChain({ db, database: { path: t.path, key: t.key } }, { inlineBelow: 0, workers: 2 })).toEqual(verdict);
    // Nothing more is due until entries after the anchor pass the cut.
    expect(pruneDue(db, CUT)).toMatchObject({ throughSeq: 9, count: 0 });
  });

  it('detects an anchor moved past more entries, and an anchor with another hash', () => {
    t = createTestDb();
    const { db } = t;
    log(db);
    appendAudit(db, read([]), 1_100);
    prune(db, 600); // entries 1..5 pruned, record at 12
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, prunedThrough: 5 });
    const hashOf = (seq: number) => db.prepare('SELECT hash FROM audit_log WHERE seq = ?').pluck().get(seq) as string;

    // Entries 6 and 7 deleted and the anchor moved over them, with 7's true hash: the chain links, the record does not agree.
    const hash7 = hashOf(7);
    forgeAnchor(db, `DELETE FROM audit_log WHERE seq IN (6, 7); UPDATE audit_anchor SET through_seq = 7, through_hash = '${hash7}' WHERE through_seq = 5`);
    expect(verifyAuditChain(db)).toMatchObject({ ok: false, brokenAt: 8, reason: expect.stringContaining('does not match the pruning entry 12') });

    t.cleanup();
    t = createTestDb();
    log(t.db);
    appendAudit(t.db, read([]), 1_100);
    prune(t.db, 600);
    forgeAnchor(t.db, `UPDATE audit_anchor SET through_hash = '${'a'.repeat(64)}'`);
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: false, brokenAt: 6, reason: 'entry 6 does not follow entry 5' });
  });

  it('refuses a DELETE of an entry no anchor names, every UPDATE, and an anchor moved backwards', () => {
    t = createTestDb();
    const { db } = t;
    log(db);
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 1').run()).toThrow(/append-only/);
    prune(db, 400); // 1..3
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 4').run()).toThrow(/append-only/);
    expect(() => db.prepare(`UPDATE audit_log SET user_id = 'mallory' WHERE seq = 4`).run()).toThrow(/append-only/);
    expect(seqs(db)[0]).toBe(4);

    const anchor = readAnchor(db)!;
    const insert = db.prepare('INSERT INTO audit_anchor (through_seq, through_hash, cut_at, pruned_at, record_seq) VALUES (?, ?, 0, 0, ?)');
    // Backwards (entry 2 is gone, so no check can pass), or onto itself.
    expect(() => insert.run(2, anchor.throughHash, anchor.recordSeq)).toThrow(/audit_anchor (only moves forward|must name an entry)/);
    db.exec('DROP TRIGGER audit_anchor_names_the_chain');
    expect(() => insert.run(3, anchor.throughHash, anchor.recordSeq)).toThrow(/only moves forward/);
    expect(() => db.prepare('UPDATE audit_anchor SET through_seq = 1').run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_anchor').run()).toThrow(/append-only/);
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, prunedThrough: 3 });
  });

  it('refuses an anchor that names a hash the entry does not have, or a pruning record that does not exist', () => {
    t = createTestDb();
    const { db } = t;
    log(db);
    const insert = db.prepare('INSERT INTO audit_anchor (through_seq, through_hash, cut_at, pruned_at, record_seq) VALUES (?, ?, 0, 0, ?)');
    const hash4 = db.prepare('SELECT hash FROM audit_log WHERE seq = 4').pluck().get() as string;
    expect(() => insert.run(4, 'b'.repeat(64), 10)).toThrow(/must name an entry/);
    expect(() => insert.run(4, hash4, 99)).toThrow(/must name an entry/);
    expect(() => db.prepare('DELETE FROM audit_log WHERE seq = 1').run()).toThrow(/append-only/);
  });

  it('the relay witness keeps agreeing after its entry was pruned, and still catches a rewritten one', () => {
    t = createTestDb();
    const { db } = t;
    const { privateKey } = generateKeyPairSync('ed25519');
    for (let i = 1; i <= 3; i += 1) appendAudit(db, read([]), i * 100);
    const old = makeCheckpoint(db, 'appliance-1', privateKey, 350)!;
    for (let i = 4; i <= 6; i += 1) appendAudit(db, read([]), i * 100);
    const atAnchor = makeCheckpoint(db, 'appliance-1', privateKey, 650)!;
    for (let i = 7; i <= 8; i += 1) appendAudit(db, read([]), i * 100);
    prune(db, 650); // entries 1..6
    expect(compareWithWitness(db, old)).toEqual({ ok: true, witnessedSeq: 3 });
    expect(compareWithWitness(db, atAnchor)).toEqual({ ok: true, witnessedSeq: 6 });
    const rewritten = { ...atAnchor, checkpoint: { ...atAnchor.checkpoint, headHash: 'c'.repeat(64) } };
    expect(compareWithWitness(db, rewritten)).toMatchObject({ ok: false });
  });

  it('the relay witness catches a pruning that removed entries written after a checkpoint made past the cut', () => {
    t = createTestDb();
    const { db } = t;
    const { privateKey } = generateKeyPairSync('ed25519');
    for (let i = 1; i <= 3; i += 1) appendAudit(db, read([]), i * 100);
    // Made at 2,000, after the cut of 1,000: entries 4.. came later still, so none was due.
    const recent = makeCheckpoint(db, 'appliance-1', privateKey, 2_000)!;
    for (let i = 4; i <= 6; i += 1) appendAudit(db, read([]), 2_000 + i);
    // Forged: the entries are pruned as if older than the cut (the clock of the pruning lies).
    const anchor = anchorPrune(db, { throughSeq: 6, count: 6, cutAt: CUT, at: 5_000, by: SYSTEM });
    db.transaction(() => deletePrunedBatch(db, anchor.throughSeq, 100))();
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, prunedThrough: 6 });
    expect(compareWithWitness(db, recent)).toMatchObject({ ok: false, reason: expect.stringMatching(/removed before their time/) });
    // A checkpoint made before the cut, behind the anchor, is simply older.
    const older = { ...recent, checkpoint: { ...recent.checkpoint, at: CUT - 1 } };
    expect(compareWithWitness(db, older)).toEqual({ ok: true, witnessedSeq: 3 });
  });
});
