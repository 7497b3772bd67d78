// How audited calls commit: reads without waiting for the disk (durable against a crash of the
// core, flushed within a second), state changes with an fsync; and a read entry that survives the
// core being SIGKILLed right after its answer, in a real child process on the real SQLCipher file.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../rpc/dispatch';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { createTestDb, type TestDb } from '../testing/testDb';
import { rpc, signIn } from '../testing/users';
import { verifyAuditChain } from './auditLog';
import { createAuditCommits, DURABLE_THROUGH_KEY, type AuditCommits } from './readCommits';

const READ: AuditRecord = { userId: 'anna', displayName: 'Anna', role: 'receptionist', sessionId: 's1', action: 'read', method: 'messages.list', contactIds: [7], origin: 'desk', outcome: 'ok' };
const durableThrough = (t: TestDb) => t.db.prepare(`SELECT value FROM settings WHERE key = '${DURABLE_THROUGH_KEY}'`).pluck().get() as string | undefined;
const synchronous = (t: TestDb) => t.db.pragma('synchronous', { simple: true });

describe('audit commits', () => {
  let t: TestDb;
  let commits: AuditCommits;
  beforeEach(() => {
    t = createTestDb();
    commits = createAuditCommits({ db: t.db, now: Date.now, logger: pino({ level: 'silent' }), flushAfterMs: 50 });
  });
  afterEach(() => {
    commits.close();
    t.cleanup();
  });

  it('commits a read with its entry unflushed, then flushes it within the window, and keeps FULL for everything else', async () => {
    commits.atomically(() => commits.audit(READ), 'read');
    expect(commits.pending()).toBe(1);
    expect(synchronous(t)).toBe(2); // FULL again right after the relaxed commit
    expect(durableThrough(t)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 120));
    expect(commits.pending()).toBe(0);
    expect(durableThrough(t)).toBe('1');
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 1 });
  });

  it('flushes before the answer when a read call wrote more than its own entry', () => {
    commits.atomically(() => {
      commits.audit(READ);
      t.db.prepare(`INSERT INTO settings (key, value, updated_at) VALUES ('changed-by-a-read', 'x', 0)`).run();
    }, 'read');
    expect(commits.pending()).toBe(0);
    expect(durableThrough(t)).toBe('1');
  });

  it('leaves a write, and a read with nothing to write, to the ordinary commit', () => {
    commits.atomically(() => commits.audit({ ...READ, action: 'update', method: 'contacts.update' }), 'write');
    commits.atomically(() => undefined, 'read');
    expect(commits.pending()).toBe(0);
    expect(commits.flushes()).toBe(0);
    expect(synchronous(t)).toBe(2);
  });

  it('rolls a failed read back and restores FULL', () => {
    expect(() =>
      commits.atomically(() => {
        commits.audit(READ);
        throw new Error('handler failed');
      }, 'read'),
    ).toThrow('handler failed');
    expect(commits.pending()).toBe(0);
    expect(synchronous(t)).toBe(2);
    expect(t.db.prepare('SELECT count(*) FROM audit_log').pluck().get()).toBe(0);
  });

  it("leaves the WAL's checkpoint to the flush, never to a read's commit, and keeps a hold of checkpoints", async () => {
    // The WAL header's checkpoint sequence (offset 12) grows each time a checkpoint let the WAL start over.
    const walRestarts = () => {
      const header = readFileSync(`${t.path}-wal`).subarray(0, 16);
      return header.length < 16 ? 0 : header.readUInt32BE(12);
    };
    t.db.pragma('wal_autocheckpoint = 4');
    commits.atomically(() => commits.audit(READ), 'read');
    const start = walRestarts();
    for (let i = 0; i < 12; i += 1) commits.atomically(() => commits.audit(READ), 'read');
    expect(walRestarts()).toBe(start); // a dozen reads past the 4-page threshold, and no read checkpointed
    expect(t.db.pragma('wal_autocheckpoint', { simple: true })).toBe(4);
    await new Promise((r) => setTimeout(r, 120));
    expect(commits.flushes()).toBe(1);
    commits.atomically(() => commits.audit(READ), 'read');
    expect(walRestarts()).toBe(start + 1); // the flush checkpointed, so the next commit started the WAL over
    expect(verifyAuditChain(t.db)).toMatchObject({ ok: true, entries: 14 });

    t.db.pragma('wal_autocheckpoint = 0');
    commits.atomically(() => commits.audit(READ), 'read');
    expect(t.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
  });

  it('flushes what is pending when closed', () => {
    commits.atomically(() => commits.audit(READ), 'read');
    commits.close();
    expect(durableThrough(t)).toBe('1');
  });
});

describe('a read entry across SIGKILL (real core in a child process)', () => {
  let seeded: SeededCore;
  afterEach(() => seeded?.stop());

  it('keeps the entry of a thread opened just before the core was killed, and the chain verifies', async () => {
    seeded = await startSeededCore();
    const reception = { username: 'rita', displayName: 'Rita', roles: ['receptionist'] } as const;
    await signIn(seeded.core, reception);
    await seeded.closeCore();
    const { conversationId, contactId } = seeded.patients[0];

    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'readCrashChild.ts'), seeded.dataDir, reception.username, String(conversationId)], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, sig) => done(sig)));
    expect(err).toBe('');
    expect(signal).toBe('SIGKILL');
    expect(out).toMatch(/^OPENED [1-9]/);

    const found = seeded.read((db) => ({
      entry: db.prepare(`SELECT seq, user_id, origin, contact_ids FROM audit_log WHERE method = 'messages.list' ORDER BY seq DESC LIMIT 1`).get() as
        | { seq: number; user_id: string; origin: string; contact_ids: string }
        | undefined,
      durable: db.prepare(`SELECT value FROM settings WHERE key = '${DURABLE_THROUGH_KEY}'`).pluck().get() as string | undefined,
      verdict: verifyAuditChain(db),
    }));
    expect(found.entry).toMatchObject({ origin: 'desk-crash', contact_ids: JSON.stringify([contactId]) });
    // The process died before its flush: the entry was only in the WAL (the OS's page cache), and survived.
    expect(Number(found.durable ?? 0)).toBeLessThan(found.entry!.seq);
    expect(found.verdict).toMatchObject({ ok: true });

    // The core opens the folder again and the auditor sees the read.
    const core = await seeded.reopen();
    const auditor = await signIn(core, { username: 'audra', displayName: 'Audra', roles: ['auditor'] });
    const page = await rpc(auditor, 'audit.query', { filter: { contactId } });
    expect(page.items.some((r) => r.method === 'messages.list' && r.origin === 'desk-crash')).toBe(true);
  }, 60_000);
});
