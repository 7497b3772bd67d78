// An installation from before accounts (database at schema version 30, conversations already in
// it, no users) and one created today without users: both get their first admin from the sign-in
// screen, once, and lose nothing — the receptionist the admin then adds sees the old conversations.
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, schemaVersion } from '../db/migrate';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { TEST_PASSWORD, rpc } from '../testing/users';

let s: SeededCore | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const ONE_TIME = 'given at the front desk 19';
const FIRST = { displayName: 'Praxis IT', username: 'praxis-it', password: TEST_PASSWORD };

describe.each([
  { label: 'an earlier version (schema 30, migrated at start)', from: 30 },
  { label: 'a data folder made today without users', from: undefined },
])('the first admin of $label', ({ from }) => {
  it('is created once from a signed-out connection, and the data is still there', async () => {
    s = await startSeededCore(from === undefined ? {} : { schemaVersion: from });
    expect(s.read((db) => schemaVersion(db))).toBe(SCHEMA_VERSION);
    const screen = s.core.connect('desk');
    expect(await rpc(screen, 'auth.status')).toEqual({ hasAdmin: false, recentUsers: [] });
    expect(await rpc(screen, 'session.whoami')).toEqual({ signedIn: false });
    // No admin yet is no reason to show patients to whoever sits down.
    expect(await screen.dispatch('inbox.listConversations', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await screen.dispatch('auth.createFirstAdmin', { ...FIRST, password: 'too short' })).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED' } });
    expect(await rpc(screen, 'auth.status')).toMatchObject({ hasAdmin: false });

    // Two set-up forms racing: exactly one admin.
    const other = s.core.connect('desk-2');
    const [a, b] = await Promise.all([
      screen.dispatch('auth.createFirstAdmin', FIRST),
      other.dispatch('auth.createFirstAdmin', { displayName: 'Someone Else', username: 'someone-else', password: TEST_PASSWORD }),
    ]);
    expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
    const [winner, loser] = a.ok ? [screen, other] : [other, screen];
    expect(a.ok ? b : a).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await rpc(winner, 'session.whoami')).toMatchObject({ signedIn: true, roles: ['admin'], state: 'active' });
    expect(await rpc(loser, 'session.whoami')).toEqual({ signedIn: false });
    // And a second time, later, from anywhere: refused.
    expect(await s.core.connect('desk-3').dispatch('auth.createFirstAdmin', { ...FIRST, username: 'third' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await rpc(s.core.connect('desk-3'), 'auth.status')).toMatchObject({ hasAdmin: true });
    const users = await rpc(winner, 'users.list');
    expect(users).toHaveLength(1);

    // The admin sees no patient text; the receptionist the admin adds sees the old conversations.
    expect(await winner.dispatch('inbox.listConversations', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    await rpc(winner, 'users.create', { username: 'anna', displayName: 'Anna', roles: ['receptionist'], password: ONE_TIME });
    const reception = s.core.connect('desk-4');
    await rpc(reception, 'auth.signIn', { username: 'anna', password: ONE_TIME });
    await rpc(reception, 'auth.changePassword', { newPassword: TEST_PASSWORD });
    const page = await rpc(reception, 'inbox.listConversations');
    expect(page.items.map((c) => c.id).sort()).toEqual(s.patients.map((p) => p.conversationId).sort());
    const thread = await rpc(reception, 'messages.list', { conversationId: s.patients[0].conversationId });
    expect(thread.items.map((m) => m.text)).toContain('Termin bitte 0');

    const trail = s.read((db) => db.prepare(`SELECT method, action, outcome, user_id FROM audit_log WHERE method = 'auth.createFirstAdmin' ORDER BY seq`).all());
    expect(trail).toEqual(
      expect.arrayContaining([
        { method: 'auth.createFirstAdmin', action: 'create', outcome: 'ok', user_id: users[0]!.id },
        { method: 'auth.createFirstAdmin', action: 'login', outcome: 'ok', user_id: users[0]!.id },
      ]),
    );
  });
});
