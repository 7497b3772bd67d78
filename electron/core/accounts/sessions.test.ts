// Sessions as the desk lives them: signing out, an admin ending a session, a session left idle for
// 12 hours, the desk's lock and its PIN, a password reset by an admin, a disabled account, and the
// installation never left without an admin. Each one through real connections to a real core.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcEventName } from '../../../shared/rpc';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { IT_ADMIN, TEST_PASSWORD, adminConnection, rpc, signIn, type Person } from '../testing/users';
import type { Connection } from '../types';
import { SESSION_MAX_IDLE_MS } from './service';

const ANNA: Person = { username: 'anna', displayName: 'Anna', roles: ['receptionist'] };
const BRAM: Person = { username: 'bram', displayName: 'Bram', roles: ['receptionist'] };
const NEW_PASSWORD = 'quiet river sandstone 58';

let s: SeededCore;
let admin: Connection;

/** A connection signed in as `person`, with the events pushed to it. */
async function desk(person: Person, origin = 'desk'): Promise<{ connection: Connection; events: { event: RpcEventName; payload: unknown }[] }> {
  const connection = await signIn(s.core, person, origin);
  const events: { event: RpcEventName; payload: unknown }[] = [];
  connection.on((event, payload) => void events.push({ event, payload }));
  return { connection, events };
}
const ended = (reason: string) => ({ event: 'session.ended', payload: { reason } });
const code = (c: string) => ({ ok: false, error: { code: c } });
async function sessionIdOf(connection: Connection): Promise<string> {
  const me = await rpc(connection, 'session.whoami');
  if (!me.signedIn) throw new Error('not signed in');
  return me.sessionId;
}
const userId = async (username: string) => (await rpc(admin, 'users.list')).find((u) => u.username === username)!.id;

beforeAll(async () => {
  s = await startSeededCore();
  admin = await adminConnection(s.core);
});
afterAll(() => s?.stop());

describe('sessions', () => {
  it('ends at sign-out: the next call is refused and the window is told', async () => {
    const { connection, events } = await desk(ANNA);
    const sessionId = await sessionIdOf(connection);
    expect(await rpc(connection, 'inbox.listConversations')).toMatchObject({ items: [expect.anything(), expect.anything()] });
    await rpc(connection, 'auth.signOut');
    expect(events).toContainEqual(ended('signed_out'));
    expect(await connection.dispatch('inbox.listConversations', {})).toMatchObject(code('UNAUTHENTICATED'));
    expect(await rpc(connection, 'session.whoami')).toEqual({ signedIn: false });
    expect((await rpc(admin, 'sessions.list')).map((x) => x.id)).not.toContain(sessionId);
    const logout = s.read((db) => db.prepare(`SELECT action, user_id, display_name, session_id FROM audit_log WHERE method = 'auth.signOut'`).get());
    expect(logout).toMatchObject({ action: 'logout', display_name: 'Anna', session_id: sessionId });
  });

  it('ends when an admin revokes it: that window is told at once and its next call refused', async () => {
    const { connection, events } = await desk(ANNA);
    const sessionId = await sessionIdOf(connection);
    const listed = await rpc(admin, 'sessions.list');
    expect(listed.find((x) => x.id === sessionId)).toMatchObject({ username: 'anna', origin: 'desk', state: 'active', current: false });
    expect(listed.find((x) => x.current)?.username).toBe(IT_ADMIN.username);

    await rpc(admin, 'sessions.revoke', { sessionId });
    expect(events).toEqual([ended('revoked')]);
    expect(await connection.dispatch('inbox.listConversations', {})).toMatchObject(code('UNAUTHENTICATED'));
    expect(await admin.dispatch('sessions.revoke', { sessionId })).toMatchObject(code('NOT_FOUND'));
    const entry = s.read((db) => db.prepare(`SELECT action, outcome FROM audit_log WHERE method = 'sessions.revoke' ORDER BY seq LIMIT 1`).get());
    expect(entry).toEqual({ action: 'revoke', outcome: 'ok' });
  });

  it('locks: only unlock, sign-out and whoami answer until it is unlocked', async () => {
    const { connection, events } = await desk(ANNA);
    await rpc(connection, 'auth.lock');
    expect(events).toContainEqual({ event: 'session.changed', payload: {} });
    expect(await rpc(connection, 'session.whoami')).toMatchObject({ signedIn: true, state: 'locked' });
    for (const [method, params] of [
      ['inbox.listConversations', {}],
      ['messages.list', { conversationId: s.patients[0].conversationId }],
      ['quickReplies.list', {}],
      ['auth.setPin', { pin: '1234', password: TEST_PASSWORD }],
    ] as const) {
      expect(await connection.dispatch(method, params), method).toMatchObject(code('SESSION_LOCKED'));
    }
    expect(await connection.dispatch('auth.unlock', { password: 'not the password at all' })).toMatchObject(code('UNAUTHENTICATED'));
    expect(await rpc(connection, 'auth.unlock', { password: TEST_PASSWORD })).toMatchObject({ state: 'active' });
    expect(await connection.dispatch('inbox.listConversations', {})).toMatchObject({ ok: true });
    const trail = s.read((db) => db.prepare(`SELECT action, outcome FROM audit_log WHERE action IN ('lock', 'unlock') ORDER BY seq`).all());
    expect(trail).toEqual([
      { action: 'lock', outcome: 'ok' },
      { action: 'unlock', outcome: 'denied' },
      { action: 'unlock', outcome: 'ok' },
    ]);
  });

  it('unlocks with the PIN, five wrong PINs then only with the password', async () => {
    const { connection } = await desk(ANNA);
    expect(await connection.dispatch('auth.setPin', { pin: '4821', password: 'not the password at all' })).toMatchObject(code('UNAUTHENTICATED'));
    await rpc(connection, 'auth.setPin', { pin: '4821', password: TEST_PASSWORD });
    expect(await rpc(connection, 'session.whoami')).toMatchObject({ hasPin: true });
    await rpc(connection, 'auth.lock');
    expect(await rpc(connection, 'auth.unlock', { pin: '4821' })).toMatchObject({ state: 'active' });

    await rpc(connection, 'auth.lock');
    for (let left = 4; left >= 1; left--) {
      const r = await connection.dispatch('auth.unlock', { pin: '0000' });
      expect(r).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED', message: expect.stringContaining(`${left} more`) } });
    }
    expect(await connection.dispatch('auth.unlock', { pin: '0000' })).toMatchObject(code('ACCOUNT_LOCKED'));
    // Now even the right PIN is refused: the password is needed.
    expect(await connection.dispatch('auth.unlock', { pin: '4821' })).toMatchObject(code('ACCOUNT_LOCKED'));
    expect(await connection.dispatch('inbox.listConversations', {})).toMatchObject(code('SESSION_LOCKED'));
    expect(await rpc(connection, 'auth.unlock', { password: TEST_PASSWORD })).toMatchObject({ state: 'active' });
    // Unlocked, the PIN's count starts again.
    await rpc(connection, 'auth.lock');
    expect(await rpc(connection, 'auth.unlock', { pin: '4821' })).toMatchObject({ state: 'active' });
  });

  it('is ended by an admin’s password reset; the one-time password signs in but must be changed first', async () => {
    const { connection, events } = await desk(BRAM);
    const { oneTimePassword } = await rpc(admin, 'users.resetPassword', { userId: await userId('bram') });
    expect(oneTimePassword).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    expect(events).toEqual([ended('password_reset')]);
    expect(await connection.dispatch('quickReplies.list', {})).toMatchObject(code('UNAUTHENTICATED'));

    const again = s.core.connect('desk-reset');
    expect(await again.dispatch('auth.signIn', { username: 'bram', password: TEST_PASSWORD })).toMatchObject(code('UNAUTHENTICATED'));
    await rpc(again, 'auth.signIn', { username: 'bram', password: oneTimePassword });
    expect(await rpc(again, 'session.whoami')).toMatchObject({ state: 'password_change' });
    expect(await again.dispatch('inbox.listConversations', {})).toMatchObject(code('PASSWORD_CHANGE_REQUIRED'));
    expect(await again.dispatch('auth.changePassword', { newPassword: oneTimePassword })).toMatchObject(code('PASSWORD_REJECTED'));
    expect(await rpc(again, 'auth.changePassword', { newPassword: NEW_PASSWORD })).toMatchObject({ state: 'active' });
    expect(await again.dispatch('inbox.listConversations', {})).toMatchObject({ ok: true });
    expect((await rpc(admin, 'users.list')).find((u) => u.username === 'bram')).toMatchObject({ mustChangePassword: false });
    const fresh = s.core.connect('desk-reset-2');
    expect(await fresh.dispatch('auth.signIn', { username: 'bram', password: oneTimePassword })).toMatchObject(code('UNAUTHENTICATED'));
    expect(await fresh.dispatch('auth.signIn', { username: 'bram', password: NEW_PASSWORD })).toMatchObject({ ok: true });
  });

  it('is ended when the account is disabled, and the account cannot sign in until enabled again', async () => {
    const { connection, events } = await desk(ANNA);
    const id = await userId('anna');
    expect(await rpc(admin, 'users.update', { userId: id, disabled: true })).toMatchObject({ disabled: true });
    expect(events).toEqual([ended('disabled')]);
    expect(await connection.dispatch('quickReplies.list', {})).toMatchObject(code('UNAUTHENTICATED'));
    const again = s.core.connect('desk-disabled');
    expect(await again.dispatch('auth.signIn', { username: 'anna', password: TEST_PASSWORD })).toMatchObject({
      ok: false,
      error: { message: expect.stringMatching(/disabled/) },
    });
    await rpc(admin, 'users.update', { userId: id, disabled: false });
    expect(await again.dispatch('auth.signIn', { username: 'anna', password: TEST_PASSWORD })).toMatchObject({ ok: true });
  });

  it('never leaves the installation without an enabled admin', async () => {
    const itAdminId = await userId(IT_ADMIN.username);
    expect(await admin.dispatch('users.update', { userId: itAdminId, roles: ['receptionist'] })).toMatchObject(code('CONFLICT'));
    expect(await admin.dispatch('users.update', { userId: itAdminId, disabled: true })).toMatchObject(code('CONFLICT'));
    // A second admin can be demoted; then the first still cannot demote themselves.
    await signIn(s.core, { username: 'dora', displayName: 'Dora', roles: ['admin'] });
    const doraId = await userId('dora');
    expect(await rpc(admin, 'users.update', { userId: doraId, roles: ['auditor'] })).toMatchObject({ roles: ['auditor'] });
    expect(await admin.dispatch('users.update', { userId: itAdminId, roles: ['receptionist', 'auditor'] })).toMatchObject(code('CONFLICT'));
    // Refused means unchanged.
    expect((await rpc(admin, 'users.list')).find((u) => u.id === itAdminId)).toMatchObject({ roles: ['admin'], disabled: false });
    expect(await rpc(admin, 'session.whoami')).toMatchObject({ roles: ['admin'] });
    // Adding a role to the last admin is fine.
    expect(await rpc(admin, 'users.update', { userId: itAdminId, roles: ['admin', 'auditor'] })).toMatchObject({ roles: ['admin', 'auditor'] });
  });

  // Last: it moves the clock past every other session's idle limit too.
  it('expires after 12 hours without a call, and not before', async () => {
    const { connection, events } = await desk(ANNA);
    s.clock.advance(SESSION_MAX_IDLE_MS - 60_000);
    expect(await connection.dispatch('quickReplies.list', {})).toMatchObject({ ok: true });
    s.clock.advance(SESSION_MAX_IDLE_MS - 60_000);
    expect(await connection.dispatch('quickReplies.list', {})).toMatchObject({ ok: true });
    s.clock.advance(SESSION_MAX_IDLE_MS + 1);
    expect(await connection.dispatch('quickReplies.list', {})).toMatchObject(code('UNAUTHENTICATED'));
    expect(events).toEqual([ended('expired')]);
  });
});
