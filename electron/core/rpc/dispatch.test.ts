// The core's one door: a call and its audit entry commit together or not at all, over a real
// encrypted database with the real audit log.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import { RPC_METHODS } from '../../../shared/rpc';
import { appendAudit } from '../audit/auditLog';
import { testCaller } from '../testing/users';
import { createTestDb, type TestDb } from '../testing/testDb';
import { createDispatch, type AuditRecord, type Handler, type Handlers } from './dispatch';

const ANNA = testCaller({ userId: 'anna', roles: ['receptionist'], displayName: 'Anna' });

let t: TestDb;
let failAudit: boolean;
let afterCommitRan: boolean;

/** Handlers that write a note, then do what the test asks. Methods not listed are never called. */
function dispatchWith(handlers: Partial<Handlers>) {
  const unused: Handler<never> = () => {
    throw new Error('not used in this test');
  };
  return createDispatch({
    handlers: { ...(Object.fromEntries(RPC_METHODS.map((m) => [m, unused])) as unknown as Handlers), ...handlers },
    audit: (record: AuditRecord) => {
      if (failAudit) throw new Error('disk full');
      appendAudit(t.db, record, Date.now());
    },
    atomically: (fn) => t.db.transaction(fn)(),
    logger: pino({ level: 'silent' }),
  });
}

const notes = () => (t.db.prepare(`SELECT value FROM settings WHERE key = 'dispatch-test'`).pluck().all() as string[]).length;
const entries = () => t.db.prepare(`SELECT method, outcome, error_code FROM audit_log ORDER BY seq`).all();
const writeNote = () => t.db.prepare(`INSERT INTO settings (key, value, updated_at) VALUES ('dispatch-test', 'x', 0)`).run();

beforeEach(() => {
  t = createTestDb();
  failAudit = false;
  afterCommitRan = false;
});
afterEach(() => t.cleanup());

const contact = { id: 1, waId: '31612345678', businessScopedUserId: null, profileName: null, displayName: 'x', notes: '' };

describe('dispatch and the audit log', () => {
  it('commits a change with its audit entry, then runs the work kept for after the commit', async () => {
    const dispatch = dispatchWith({
      'contacts.update': (_p, ctx) => {
        writeNote();
        ctx.concerns(1);
        ctx.afterCommit(() => (afterCommitRan = true));
        return contact as never;
      },
    });
    const result = await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' });
    expect(result.ok).toBe(true);
    expect(notes()).toBe(1);
    expect(entries()).toEqual([{ method: 'contacts.update', outcome: 'ok', error_code: null }]);
    expect(afterCommitRan).toBe(true);
  });

  it('undoes the change when its audit entry cannot be written, and says nothing was done', async () => {
    const dispatch = dispatchWith({
      'contacts.update': (_p, ctx) => {
        writeNote();
        ctx.afterCommit(() => (afterCommitRan = true));
        return contact as never;
      },
    });
    failAudit = true;
    const result = await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' });
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: expect.stringContaining('nothing was done') } });
    expect(notes()).toBe(0);
    expect(afterCommitRan).toBe(false);
  });

  it('undoes a half-done change when the handler fails, and records the failure', async () => {
    const dispatch = dispatchWith({
      'contacts.update': () => {
        writeNote();
        throw new CodedError('CONFLICT', 'changed meanwhile');
      },
    });
    expect(await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    expect(notes()).toBe(0);
    expect(entries()).toEqual([{ method: 'contacts.update', outcome: 'error', error_code: 'CONFLICT' }]);
  });

  it('undoes a change whose answer fails its schema', async () => {
    const dispatch = dispatchWith({
      'contacts.update': () => {
        writeNote();
        return { not: 'a contact' } as never;
      },
    });
    expect(await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' })).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    expect(notes()).toBe(0);
    expect(entries()).toEqual([]);
  });

  it('audits an asynchronous handler once it has finished', async () => {
    const dispatch = dispatchWith({
      'contacts.update': async () => {
        await new Promise((r) => setTimeout(r, 5));
        writeNote();
        return contact as never;
      },
    });
    expect((await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' })).ok).toBe(true);
    expect(notes()).toBe(1);
    expect(entries()).toEqual([{ method: 'contacts.update', outcome: 'ok', error_code: null }]);
  });

  it('commits an asynchronous handler\'s closing writes with its audit entry in one transaction, once, or neither', async () => {
    let commits = 0;
    const counting = (fn: () => unknown) => {
      commits++;
      return t.db.transaction(fn)();
    };
    const handler: Handler<'contacts.update'> = async (_p, ctx) => {
      await new Promise((r) => setTimeout(r, 5));
      ctx.commitWithAudit(() => writeNote());
      return contact as never;
    };
    const dispatch = createDispatch({
      handlers: { ...(Object.fromEntries(RPC_METHODS.map((m) => [m, handler])) as unknown as Handlers) },
      audit: (record: AuditRecord) => {
        if (failAudit) throw new Error('disk full');
        appendAudit(t.db, record, Date.now());
      },
      atomically: (fn) => counting(fn) as never,
      logger: pino({ level: 'silent' }),
    });
    expect((await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' })).ok).toBe(true);
    expect(notes()).toBe(1);
    // One entry (not a second one when the call settles), written inside the handler's transaction.
    expect(entries()).toEqual([{ method: 'contacts.update', outcome: 'ok', error_code: null }]);
    expect(commits).toBe(2); // the handler's synchronous start, then its closing writes with the entry

    t.db.prepare(`DELETE FROM settings WHERE key = 'dispatch-test'`).run();
    failAudit = true;
    const refused = await dispatch(ANNA, 'contacts.update', { contactId: 1, notes: 'n' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: expect.stringContaining('not stored') } });
    expect(notes()).toBe(0);
  });
});
