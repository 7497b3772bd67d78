// Quick replies through the core's one door: the same dispatch every transport uses, over a real
// encrypted database, with the real audit log. The Graph API, relay link and recovery are not
// reached by these methods, so they are left out.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUICK_REPLIES_MAX, QUICK_REPLY_MAX_LENGTH, type RpcEventName } from '../../../shared/rpc';
import { appendAudit, verifyAuditChain } from '../audit/auditLog';
import { testCaller } from '../testing/users';
import { createTestDb, type TestDb } from '../testing/testDb';
import type { Caller } from '../types';
import { createDispatch, type Dispatch, type Handlers } from './dispatch';
import { createHandlers } from './handlers';

const ANNA = testCaller({ userId: 'anna', roles: ['receptionist'], displayName: 'Anna' });
const AUDITOR = testCaller({ userId: 'olga', roles: ['auditor'], displayName: 'Olga' });

let t: TestDb;
let dispatch: Dispatch;
let events: RpcEventName[];
let clock: number;

beforeEach(() => {
  t = createTestDb();
  events = [];
  clock = 1_760_000_000_000;
  const now = () => clock;
  dispatch = createDispatch({
    handlers: createHandlers({
      db: t.db,
      now,
      link: {} as never,
      whatsapp: {} as never,
      recovery: {} as never,
      emit: (event) => void events.push(event),
    }) as Handlers,
    audit: (record) => void appendAudit(t.db, record, now()),
    logger: pino({ level: 'silent' }),
  });
});
afterEach(() => t.cleanup());

async function call(method: string, params: unknown, session: Caller = ANNA) {
  return dispatch(session, method, params);
}
async function list(): Promise<string[]> {
  const result = await call('quickReplies.list', {});
  if (!result.ok) throw new Error(result.error.message);
  return (result.value as { text: string }[]).map((r) => r.text);
}
function auditTrail() {
  return t.db.prepare(`SELECT user_id, action, method, outcome, error_code FROM audit_log WHERE method LIKE 'quickReplies.%' ORDER BY seq`).all();
}

describe('quickReplies RPC', () => {
  it('saves, lists and removes for the desk, audits create and delete, and tells other windows', async () => {
    const added = await call('quickReplies.add', { text: ' Ihr Rezept liegt ab morgen bereit. ' });
    expect(added).toEqual({
      ok: true,
      value: { created: true, reply: { id: expect.any(Number), text: 'Ihr Rezept liegt ab morgen bereit.', createdBy: 'anna', createdAt: clock } },
    });
    clock += 1000;
    await call('quickReplies.add', { text: 'Bis morgen!' });
    // Saving the same text again changes nothing and tells no window.
    expect(await call('quickReplies.add', { text: 'Bis morgen!' })).toMatchObject({ ok: true, value: { created: false } });
    expect(await list()).toEqual(['Ihr Rezept liegt ab morgen bereit.', 'Bis morgen!']);
    expect(events).toEqual(['quickReplies.changed', 'quickReplies.changed']);

    const id = (added as { value: { reply: { id: number } } }).value.reply.id;
    expect(await call('quickReplies.remove', { id })).toEqual({ ok: true, value: { removed: true } });
    expect(await call('quickReplies.remove', { id })).toEqual({ ok: true, value: { removed: false } });
    expect(await list()).toEqual(['Bis morgen!']);
    expect(events).toHaveLength(3);

    expect(auditTrail()).toEqual([
      { user_id: 'anna', action: 'create', method: 'quickReplies.add', outcome: 'ok', error_code: null },
      { user_id: 'anna', action: 'create', method: 'quickReplies.add', outcome: 'ok', error_code: null },
      { user_id: 'anna', action: 'create', method: 'quickReplies.add', outcome: 'ok', error_code: null },
      { user_id: 'anna', action: 'delete', method: 'quickReplies.remove', outcome: 'ok', error_code: null },
      { user_id: 'anna', action: 'delete', method: 'quickReplies.remove', outcome: 'ok', error_code: null },
    ]);
    // The audit log says who did what, never the text itself.
    const log = JSON.stringify(t.db.prepare('SELECT * FROM audit_log').all());
    expect(log).not.toContain('Rezept');
    expect(verifyAuditChain(t.db).ok).toBe(true);
  });

  it('refuses a text that is too long or empty with a clear error that does not quote it, and keeps the list', async () => {
    await call('quickReplies.add', { text: 'Bis morgen!' });
    const tooLong = await call('quickReplies.add', { text: `Befund Herr Jansen ${'x'.repeat(QUICK_REPLY_MAX_LENGTH)}` });
    expect(tooLong).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: expect.stringMatching(/text: Too big: expected string to have <=4096 characters/) } });
    expect(JSON.stringify(tooLong)).not.toContain('Jansen');
    expect(await call('quickReplies.add', { text: '   ' })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await call('quickReplies.add', {})).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await call('quickReplies.remove', { id: -1 })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await list()).toEqual(['Bis morgen!']);
    expect(events).toEqual(['quickReplies.changed']);
  });

  it(`refuses the ${QUICK_REPLIES_MAX + 1}th reply with CONFLICT, audited as an error, and keeps the list`, async () => {
    for (let i = 0; i < QUICK_REPLIES_MAX; i += 1) {
      expect(await call('quickReplies.add', { text: `Antwort ${i}` })).toMatchObject({ ok: true });
    }
    const before = await list();
    expect(before).toHaveLength(QUICK_REPLIES_MAX);
    const full = await call('quickReplies.add', { text: 'Noch eine für Frau de Vries' });
    expect(full).toEqual({
      ok: false,
      error: { code: 'CONFLICT', message: `There are already ${QUICK_REPLIES_MAX} quick replies; remove one before saving another.` },
    });
    expect(await list()).toEqual(before);
    expect(events).toHaveLength(QUICK_REPLIES_MAX);
    expect(auditTrail().at(-1)).toEqual({ user_id: 'anna', action: 'create', method: 'quickReplies.add', outcome: 'error', error_code: 'CONFLICT' });
  });

  it('is for the desk staff: an auditor may neither read nor change quick replies', async () => {
    await call('quickReplies.add', { text: 'Bis morgen!' });
    expect(await call('quickReplies.list', {}, AUDITOR)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await call('quickReplies.add', { text: 'Hallo' }, AUDITOR)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await call('quickReplies.remove', { id: 1 }, AUDITOR)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await list()).toEqual(['Bis morgen!']);
    expect(auditTrail().slice(1)).toEqual([
      { user_id: 'olga', action: 'create', method: 'quickReplies.add', outcome: 'denied', error_code: 'FORBIDDEN' },
      { user_id: 'olga', action: 'delete', method: 'quickReplies.remove', outcome: 'denied', error_code: 'FORBIDDEN' },
    ]);
  });

  it('keeps the text only encrypted: no file of the data folder holds it in the clear', async () => {
    const canary = `CANARY${randomBytes(8).toString('hex')}`;
    const added = await call('quickReplies.add', { text: `Frau ${canary}, Ihr Befund ist da.` });
    expect(added.ok).toBe(true);
    expect(await list()).toEqual([`Frau ${canary}, Ihr Befund ist da.`]);
    const files = readdirSync(t.dir);
    expect(files).toEqual(expect.arrayContaining(['test.db', 'test.db-wal']));
    const holding = (needle: string) => files.filter((f) => readFileSync(join(t.dir, f)).includes(Buffer.from(needle)));
    expect(holding(canary)).toEqual([]);
    expect(holding('Befund')).toEqual([]);
    // Still readable through the key after a checkpoint moves it from the WAL into the database file.
    t.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(holding(canary)).toEqual([]);
    expect(await list()).toHaveLength(1);
  });
});
