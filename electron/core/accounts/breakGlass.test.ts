// Break the glass: a user without the receptionist role opens one patient in an emergency. It needs
// a reason a person wrote, the reason goes into the audit entry, and the access ends by itself
// after 30 minutes. (Which methods and patients it opens: rpc/roleMatrix.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { rpc, signIn } from '../testing/users';
import { BREAK_GLASS_MS } from './service';

let s: SeededCore;
beforeAll(async () => {
  s = await startSeededCore();
});
afterAll(() => s?.stop());

const forbidden = { ok: false, error: { code: 'FORBIDDEN' } };

describe('break the glass', () => {
  it('needs a reason of at least 10 characters, records it, and expires after 30 minutes', async () => {
    expect(BREAK_GLASS_MS).toBe(30 * 60_000);
    const olga = await signIn(s.core, { username: 'olga', displayName: 'Olga', roles: ['auditor'] });
    const { conversationId, contactId } = s.patients[0];
    for (const reason of ['', 'urgent', '   urgent!   ']) {
      expect(await olga.dispatch('access.breakGlass', { conversationId, reason }), JSON.stringify(reason)).toMatchObject({
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: expect.stringContaining('at least 10 characters') },
      });
    }
    expect(await olga.dispatch('access.breakGlass', { conversationId: 999_999, reason: 'Looking for a patient who does not exist' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    expect(await olga.dispatch('conversations.get', { conversationId })).toMatchObject(forbidden);

    const reason = 'Ambulance asked for the last message, doctor approved';
    const granted = await rpc(olga, 'access.breakGlass', { conversationId, reason });
    expect(granted).toEqual({ contactId, expiresAt: s.clock.now() + 30 * 60_000 });
    expect(await olga.dispatch('messages.list', { conversationId })).toMatchObject({ ok: true });
    s.clock.advance(30 * 60_000 - 1);
    expect(await olga.dispatch('messages.list', { conversationId })).toMatchObject({ ok: true });
    s.clock.advance(1);
    expect(await olga.dispatch('messages.list', { conversationId })).toMatchObject(forbidden);

    const entries = s.read((db) => db.prepare(`SELECT outcome, reason, contact_ids, error_code FROM audit_log WHERE method = 'access.breakGlass' ORDER BY seq`).all());
    // Refused by validation before the handler ran: no entry for those; the unknown conversation and the grant are recorded.
    expect(entries).toEqual([
      { outcome: 'error', reason: null, contact_ids: '[]', error_code: 'NOT_FOUND' },
      { outcome: 'ok', reason, contact_ids: JSON.stringify([contactId]), error_code: null },
    ]);
  });
});
