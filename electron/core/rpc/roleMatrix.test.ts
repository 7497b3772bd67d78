// Who may call what, generated from the contract: every method in RPC_METHODS, called through a
// real connection to a real core (real keychain, real SQLCipher file), by each role, signed out,
// locked, with a password to change, and after an admin revoked the session. A method added to the
// contract without a sample input here fails this file, so nobody has to remember to cover it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, RPC_METHODS, methodDef, type MethodDef, type Role, type RpcMethod, type RpcResult } from '../../../shared/rpc';
import { DEFAULT_KEYWORDS } from '../privacy/consent';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { IT_ADMIN, TEST_PASSWORD, adminConnection, rpc, signIn, type Person } from '../testing/users';
import type { Connection } from '../types';

const REASON = 'Patient rang the emergency line, needs the last message';
const OTHER_PASSWORD = 'copper meadow lantern 93';

let s: SeededCore;
let admin: Connection;
/** The user whose account admin methods touch (never signed in by this file). */
let targetId: string;

const people: Record<Role, Person> = {
  receptionist: { username: 'matrix-reception', displayName: 'Matrix Reception', roles: ['receptionist'] },
  admin: { username: 'matrix-admin', displayName: 'Matrix Admin', roles: ['admin'] },
  auditor: { username: 'matrix-auditor', displayName: 'Matrix Auditor', roles: ['auditor'] },
};
/** Users kept for the password-change state: each test gives them a fresh one-time password. */
const changers: Record<Role, Person> = {
  receptionist: { username: 'pc-reception', displayName: 'PC Reception', roles: ['receptionist'] },
  admin: { username: 'pc-admin', displayName: 'PC Admin', roles: ['admin'] },
  auditor: { username: 'pc-auditor', displayName: 'PC Auditor', roles: ['auditor'] },
};
const changerIds: Partial<Record<Role, string>> = {};
const SIGN_IN_AS: Person = { username: 'matrix-signin', displayName: 'Matrix Signin', roles: ['receptionist'] };

/**
 * One input per method that passes its schema, chosen so the call is harmless to the rest of the
 * matrix when allowed (a wrong code, an unknown id, the same password again). Absent: the method
 * is not covered, and its tests fail.
 */
function samples(): Partial<Record<RpcMethod, unknown>> {
  const [p1] = s.patients;
  return {
    'session.whoami': {},
    'auth.status': {},
    'auth.createFirstAdmin': { displayName: 'Second Admin', username: 'second-admin', password: OTHER_PASSWORD },
    'auth.signIn': { username: SIGN_IN_AS.username, password: TEST_PASSWORD },
    'auth.signOut': {},
    'auth.lock': {},
    'auth.unlock': { password: TEST_PASSWORD },
    'auth.changePassword': { currentPassword: TEST_PASSWORD, newPassword: TEST_PASSWORD },
    'auth.setPin': { pin: '4821', password: TEST_PASSWORD },
    'auth.twoFactor.begin': { password: TEST_PASSWORD },
    'auth.twoFactor.confirm': { code: '000000' },
    'auth.twoFactor.disable': { password: TEST_PASSWORD },
    'users.list': {},
    'users.create': { username: 'matrix-created', displayName: 'Matrix Created', roles: ['receptionist'], password: OTHER_PASSWORD },
    'users.update': { userId: targetId, displayName: 'Matrix Target' },
    'users.resetPassword': { userId: targetId },
    'users.resetTwoFactor': { userId: targetId },
    'users.unlock': { userId: targetId },
    'sessions.list': {},
    'sessions.revoke': { sessionId: 's_no-such-session' },
    'security.getSettings': {},
    'security.updateSettings': { idleLockMinutes: 5 },
    'security.alerts': {},
    'security.acknowledgeAlert': { alertId: 999_999 },
    'access.breakGlass': { conversationId: s.patients[1].conversationId, reason: REASON },
    'inbox.listConversations': {},
    'conversations.get': { conversationId: p1.conversationId },
    'messages.list': { conversationId: p1.conversationId },
    'messages.send': { conversationId: p1.conversationId, text: 'Bis morgen' },
    'messages.sendMedia': { conversationId: p1.conversationId, dataBase64: 'aGVsbG8=', mimeType: 'text/plain', filename: 'a.txt' },
    'messages.sendTemplate': { conversationId: p1.conversationId, name: 'appointment', language: 'de' },
    'messages.react': { conversationId: p1.conversationId, messageId: 999_999, emoji: '👍' },
    'conversations.markRead': { conversationId: p1.conversationId },
    'conversations.markUnread': { conversationId: p1.conversationId },
    'conversations.setStatus': { conversationId: p1.conversationId, status: 'open' },
    'conversations.assign': { conversationId: p1.conversationId, toMe: false },
    'search.messages': { query: 'Termin' },
    'search.contacts': { query: '+49 151' },
    'contacts.get': { contactId: p1.contactId },
    'contacts.update': { contactId: p1.contactId, notes: '' },
    'media.get': { mediaId: s.mediaId },
    'templates.list': {},
    'settings.languages': {},
    'settings.overview': {},
    'settings.updateUpdates': { channel: 'stable' },
    'status.health': {},
    'updates.restartNow': {},
    'diagnostics.export': {},
    'templates.sync': {},
    'quickReplies.list': {},
    'quickReplies.add': { text: 'Bis morgen!' },
    'quickReplies.remove': { id: 999_999 },
    'relay.status': {},
    'whatsapp.status': {},
    'recovery.status': {},
    'recovery.confirm': { createdAt: 1 },
    'whatsapp.account': {},
    'recovery.create': { replace: true },
    'recovery.restore': { recoveryKey: 'AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA' },
    'setup.pair': { relayUrl: 'http://127.0.0.1:9', code: 'ABCD-1234' },
    'setup.whatsapp': { wabaId: '100000000000001', accessToken: 'EAAmatrix-token-000000000', graphBaseUrl: 'http://127.0.0.1:9' },
    'audit.verify': { withRelayWitness: false },
    'audit.query': {},
    'audit.findPatients': { query: 'Patient' },
    'audit.export': {},
    // Booking: Google is not connected and the ids are unknown, so an allowed call is a handler's refusal.
    'calendar.status': {},
    'calendar.getSettings': {},
    'calendar.updateSettings': { titleTemplate: 'Appointment {initials} · {reference}' },
    'calendar.connect': { clientId: 'matrix.apps.googleusercontent.com' },
    'calendar.disconnect': {},
    'calendar.slots': { conversationId: p1.conversationId },
    'calendar.bookings': { conversationId: p1.conversationId },
    'calendar.book': { conversationId: p1.conversationId, calendarId: 'primary', start: 1 },
    'calendar.move': { bookingId: 999_999, start: 1 },
    'calendar.cancel': { bookingId: 999_999 },
    // Event subscriptions: an allowed create adds a subscriber nobody publishes to; the rest name an unknown id.
    'events.list': {},
    'events.create': { url: 'https://pms.example.org/matrix', events: ['booking.created'] },
    'events.update': { id: 999_999, enabled: false },
    'events.delete': { id: 999_999 },
    'events.deliveries': { subscriptionId: 999_999 },
    'events.sendTest': { id: 999_999 },
    // Privacy: unknown ids or a missing folder where an allowed call would change something.
    'privacy.getConsent': { contactId: p1.contactId },
    'privacy.recordConsent': { contactId: p1.contactId, status: 'opted_in', source: 'desk' },
    'privacy.getKeywords': {},
    'privacy.updateKeywords': DEFAULT_KEYWORDS,
    'privacy.getSettings': {},
    'privacy.updateSettings': { sendGuard: 'warn' },
    'privacy.checkOutgoing': { text: 'Bis morgen' },
    'privacy.requests.list': {},
    'privacy.requests.register': { contactId: 999_999, kind: 'access' },
    'privacy.requests.complete': { requestId: 999_999, outcome: 'Sent by post' },
    'privacy.export': { contactId: p1.contactId, destinationDir: '/nonexistent/clinic-inbox-matrix' },
    'privacy.legalHold.get': { contactId: p1.contactId },
    // Held (it comes before retention.runNow in the contract), so the purge keeps the seeded file media.get reads.
    'privacy.legalHold.set': { contactId: p1.contactId, reason: REASON },
    'privacy.legalHold.clear': { contactId: 999_999, reason: REASON },
    'privacy.retention.get': {},
    'privacy.retention.update': { rules: [{ kind: 'drafts', days: 30, legalMinimumDays: 0 }] },
    'privacy.retention.preview': {},
    'privacy.retention.runNow': {},
    // Backups: no folder is set and no file exists, so an allowed call is a handler's refusal and changes nothing.
    'backup.status': {},
    'backup.getSettings': {},
    'backup.updateSettings': { keepDaily: 30 },
    'backup.runNow': {},
    'backup.list': {},
    'backup.verify': { file: '/nonexistent/clinic-inbox-matrix.cibackup' },
    'backup.restore': { file: '/nonexistent/clinic-inbox-matrix.cibackup' },
    'backup.restoreFromFile': { path: '/nonexistent/clinic-inbox-matrix.cibackup', recoveryKey: 'AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA' },
    'privacy.eraseContact': { contactId: 999_999, reason: REASON },
  };
}

type CallerState = 'signed_out' | 'active' | 'locked' | 'password_change' | 'revoked';
type Expected = 'UNAUTHENTICATED' | 'SESSION_LOCKED' | 'PASSWORD_CHANGE_REQUIRED' | 'FORBIDDEN' | 'allowed';

/** What the contract says this caller gets, before the handler has any say. */
function expectedFor(method: RpcMethod, state: CallerState, role: Role | null): Expected {
  const def: MethodDef = methodDef(method);
  if (state === 'signed_out' || state === 'revoked') return def.signedOut ? 'allowed' : 'UNAUTHENTICATED';
  if (state === 'locked' && !def.whileLocked && !def.signedOut) return 'SESSION_LOCKED';
  if (state === 'password_change' && !def.whilePasswordChange && !def.signedOut) return 'PASSWORD_CHANGE_REQUIRED';
  // A break-the-glass method without the role is refused for a patient not granted (the sample's).
  return def.roles.includes(role!) ? 'allowed' : 'FORBIDDEN';
}

/** An answer from access control itself, as opposed to the handler's (NOT_FOUND, CONFLICT, a wrong code…). */
function refusedByAccess(result: RpcResult<unknown>): boolean {
  if (result.ok) return false;
  const { code, message } = result.error;
  return (
    (code === 'UNAUTHENTICATED' && message === 'Sign in first.') ||
    code === 'SESSION_LOCKED' ||
    code === 'PASSWORD_CHANGE_REQUIRED' ||
    (code === 'FORBIDDEN' && /may not use|Break the glass/.test(message))
  );
}

async function sessionIdOf(connection: Connection): Promise<string> {
  const me = await rpc(connection, 'session.whoami');
  if (!me.signedIn) throw new Error('not signed in');
  return me.sessionId;
}

/** A fresh connection in the given state, so what one call does (sign out, lock) touches no other. */
async function connectionIn(state: CallerState, role: Role | null): Promise<Connection> {
  if (state === 'signed_out') return s.core.connect('matrix');
  if (state === 'password_change') {
    const { oneTimePassword } = await rpc(admin, 'users.resetPassword', { userId: changerIds[role!]! });
    const connection = s.core.connect('matrix');
    await rpc(connection, 'auth.signIn', { username: changers[role!].username, password: oneTimePassword });
    expect(await rpc(connection, 'session.whoami')).toMatchObject({ state: 'password_change' });
    return connection;
  }
  const connection = await signIn(s.core, people[role!], 'matrix');
  if (state === 'locked') await rpc(connection, 'auth.lock');
  if (state === 'revoked') await rpc(admin, 'sessions.revoke', { sessionId: await sessionIdOf(connection) });
  return connection;
}

beforeAll(async () => {
  s = await startSeededCore();
  admin = await adminConnection(s.core);
  for (const role of ROLES) await signIn(s.core, people[role]);
  await signIn(s.core, SIGN_IN_AS);
  for (const role of ROLES) {
    const p = changers[role];
    changerIds[role] = (await rpc(admin, 'users.create', { username: p.username, displayName: p.displayName, roles: p.roles, password: OTHER_PASSWORD })).id;
  }
  targetId = (await rpc(admin, 'users.create', { username: 'matrix-target', displayName: 'Target', roles: ['receptionist'], password: OTHER_PASSWORD })).id;
});
afterAll(() => s?.stop());

describe('the role matrix, from the contract', () => {
  it('has a valid sample input for every method in the contract', () => {
    const table = samples();
    const missing = RPC_METHODS.filter((m) => !(m in table));
    expect(missing, 'add a sample input for these methods').toEqual([]);
    const invalid = RPC_METHODS.filter((m) => m in table && !methodDef(m).input.safeParse(table[m]).success);
    expect(invalid, 'these samples do not pass their own input schema').toEqual([]);
  });

  const callers: { label: string; state: CallerState; role: Role | null }[] = [
    { label: 'signed out', state: 'signed_out', role: null },
    ...ROLES.flatMap((role) =>
      (['active', 'locked', 'password_change', 'revoked'] as const).map((state) => ({ label: `${role} (${state})`, state, role })),
    ),
  ];

  describe.each(callers)('$label', ({ state, role }) => {
    it.each(RPC_METHODS.map((m) => [m]))('%s', async (method) => {
      const table = samples();
      expect(method in table, `no sample input for ${method}`).toBe(true);
      const expected = expectedFor(method, state, role);
      const connection = await connectionIn(state, role);
      const result = await connection.dispatch(method, table[method]);
      connection.close();
      if (expected === 'allowed') {
        expect(refusedByAccess(result), `${method} was refused: ${JSON.stringify(result)}`).toBe(false);
      } else {
        expect(result, `${method} for ${state}`).toMatchObject({ ok: false, error: { code: expected } });
      }
    });
  });
});

describe('break the glass', () => {
  const glassMethods = RPC_METHODS.filter((m) => methodDef(m).breakGlass);

  it('lets a user without the role open one granted patient, only that one, only in that session, and records why', async () => {
    expect(glassMethods.length).toBeGreaterThan(0);
    const [p1, p2] = s.patients;
    const samplesFor = (p: typeof p1): Partial<Record<RpcMethod, unknown>> => ({
      'conversations.get': { conversationId: p.conversationId },
      'messages.list': { conversationId: p.conversationId },
      'contacts.get': { contactId: p.contactId },
      'media.get': { mediaId: s.mediaId },
    });
    for (const role of ROLES.filter((r) => !glassMethods.every((m) => methodDef(m).roles.includes(r)))) {
      const connection = await signIn(s.core, people[role], `glass-${role}`);
      const elsewhere = await signIn(s.core, people[role], `glass-${role}-2`);
      for (const m of glassMethods) {
        expect(samplesFor(p1)[m], `a break-the-glass sample for ${m}`).toBeDefined();
        expect(await connection.dispatch(m, samplesFor(p1)[m]), `${m} before the grant`).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
      }
      // Without a reason there is no grant.
      expect(await connection.dispatch('access.breakGlass', { conversationId: p1.conversationId })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });

      const grant = await rpc(connection, 'access.breakGlass', { conversationId: p1.conversationId, reason: REASON });
      expect(grant.contactId).toBe(p1.contactId);
      for (const m of glassMethods) {
        const result = await connection.dispatch(m, samplesFor(p1)[m]);
        expect(result, `${m} after the grant`).toMatchObject({ ok: true });
        // Another patient stays closed (media.get has only the first patient's file).
        if (m !== 'media.get') expect(await connection.dispatch(m, samplesFor(p2)[m]), `${m} for another patient`).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
        // The grant is this session's, not the user's.
        expect(await elsewhere.dispatch(m, samplesFor(p1)[m]), `${m} in another session`).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
      }
      // Methods that are not break-the-glass stay refused for that patient too.
      expect(await connection.dispatch('messages.send', { conversationId: p1.conversationId, text: 'x' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

      const sessionId = await sessionIdOf(connection);
      const entries = s.read((db) =>
        db.prepare(`SELECT method, action, reason, contact_ids, session_id, display_name, role, outcome FROM audit_log WHERE session_id = ? ORDER BY seq`).all(sessionId),
      ) as { method: string; action: string; reason: string | null; contact_ids: string; session_id: string; display_name: string; role: string; outcome: string }[];
      expect(entries.find((e) => e.method === 'access.breakGlass' && e.outcome === 'ok')).toEqual({
        method: 'access.breakGlass',
        action: 'break_glass',
        reason: REASON,
        contact_ids: JSON.stringify([p1.contactId]),
        session_id: sessionId,
        display_name: people[role].displayName,
        role,
        outcome: 'ok',
      });
      // What was opened under the grant is recorded against that patient; the refusals as denied.
      expect(entries.filter((e) => e.method === 'conversations.get').map((e) => [e.outcome, e.contact_ids])).toEqual([
        ['denied', JSON.stringify([p1.contactId])],
        ['ok', JSON.stringify([p1.contactId])],
        ['denied', JSON.stringify([p2.contactId])],
      ]);
      connection.close();
      elsewhere.close();
    }
  });

  it('is refused to the first admin signing in from another desk without a reason too', async () => {
    const connection = s.core.connect('glass-it');
    await rpc(connection, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
    expect(await connection.dispatch('conversations.get', { conversationId: s.patients[0].conversationId })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await connection.dispatch('access.breakGlass', { conversationId: s.patients[0].conversationId, reason: 'too short' })).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_FAILED' },
    });
  });
});
