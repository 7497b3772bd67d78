import { CodedError } from '../../../shared/errors';
import type { Database } from '../db/types';
import { getConversation } from '../db/repo/conversations';
import type { CallContext, Handlers } from '../rpc/dispatch';
import type { Session } from '../types';
import type { Connections } from './connections';
import * as repo from './repo';
import type { AccountsService, SignInOutcome } from './service';

type AccountMethods =
  | 'session.whoami'
  | 'auth.status'
  | 'auth.createFirstAdmin'
  | 'auth.signIn'
  | 'auth.signOut'
  | 'auth.lock'
  | 'auth.unlock'
  | 'auth.changePassword'
  | 'auth.setPin'
  | 'auth.twoFactor.begin'
  | 'auth.twoFactor.confirm'
  | 'auth.twoFactor.disable'
  | 'users.list'
  | 'users.create'
  | 'users.update'
  | 'users.resetPassword'
  | 'users.resetTwoFactor'
  | 'users.unlock'
  | 'sessions.list'
  | 'sessions.revoke'
  | 'security.getSettings'
  | 'security.updateSettings'
  | 'security.alerts'
  | 'security.acknowledgeAlert'
  | 'access.breakGlass';

export interface AccountHandlerDeps {
  db: Database;
  now: () => number;
  accounts: AccountsService;
  connections: () => Connections;
  /** Hooks for the anomaly checks: a sign-in happened, a sign-in failed. */
  onSignIn?(session: Session): void;
  onSignInFailed?(attempt: { userId: string | null; origin: string }): void;
}

const subject = (s: Session) => ({ userId: s.userId, displayName: s.displayName, roles: s.roles, sessionId: s.id });

/** Sign-in, the desk's lock, two-factor, users and sessions: the accounts feature's slice of the RPC handlers. */
export function createAccountHandlers(deps: AccountHandlerDeps): Pick<Handlers, AccountMethods> {
  const { db, now, accounts } = deps;

  function bound(ctx: CallContext, session: Session): void {
    ctx.caller.bind?.(session.id);
  }

  function recordOutcome(ctx: CallContext, outcome: SignInOutcome): void {
    if (outcome.kind === 'signed_in') {
      ctx.auditAs(subject(outcome.session));
      ctx.record({ ...auditFields(outcome.session), action: 'login', contactIds: [], outcome: 'ok' });
      bound(ctx, outcome.session);
      deps.onSignIn?.(outcome.session);
    } else if (outcome.kind === 'failed') {
      const user = outcome.attempt.userId ? repo.getUserById(db, outcome.attempt.userId) : undefined;
      // Never the password; the typed username only when it names a real account (a password typed
      // into the username field must not end up in the log).
      ctx.record({
        userId: user?.id ?? 'unknown',
        displayName: user?.display_name ?? null,
        role: user ? repo.parseRoles(user.roles).join('+') : '-',
        sessionId: null,
        action: 'login_failed',
        contactIds: [],
        outcome: 'denied',
        errorCode: outcome.error.code,
      });
      deps.onSignInFailed?.({ userId: user?.id ?? null, origin: ctx.caller.origin });
    }
  }

  function auditFields(s: Session) {
    return { userId: s.userId, displayName: s.displayName, role: s.roles.join('+'), sessionId: s.id };
  }

  return {
    'session.whoami': (_p, { session }) => accounts.whoami(session),

    'auth.status': (_p, { caller }) => ({ hasAdmin: accounts.hasAdmin(), recentUsers: repo.recentUsersAt(db, caller.origin, 8) }),

    'auth.createFirstAdmin': async (input, ctx) => {
      const session = await accounts.createFirstAdmin(input, ctx.caller.origin);
      ctx.auditAs(subject(session));
      ctx.record({ ...auditFields(session), action: 'login', contactIds: [], outcome: 'ok' });
      bound(ctx, session);
      return accounts.whoami(session);
    },

    'auth.signIn': async (input, ctx) => {
      const outcome = await accounts.signIn(input, ctx.caller.origin);
      recordOutcome(ctx, outcome);
      if (outcome.kind === 'failed') throw outcome.error;
      if (outcome.kind === 'second_factor_required') return { status: 'second_factor_required' as const };
      // Signing in over a signed-in connection (Switch user) ends the earlier session.
      if (ctx.session && ctx.session.id !== outcome.session.id) {
        accounts.endSession(ctx.session.id, 'signed_out');
        ctx.record({ ...auditFields(ctx.session), action: 'logout', contactIds: [], outcome: 'ok' });
      }
      return { status: 'signed_in' as const, whoami: accounts.whoami(outcome.session) };
    },

    'auth.signOut': (_p, ctx) => {
      const me = ctx.me;
      accounts.endSession(me.id, 'signed_out');
      ctx.record({ ...auditFields(me), action: 'logout', contactIds: [], outcome: 'ok' });
      ctx.afterCommit(() => ctx.caller.unbind?.('signed_out'));
      return {};
    },

    'auth.lock': (_p, ctx) => {
      const me = ctx.me;
      if (me.state === 'active') {
        accounts.lock(me);
        ctx.record({ ...auditFields(me), action: 'lock', contactIds: [], outcome: 'ok' });
        ctx.afterCommit(() => deps.connections().sessionChanged(me.id));
      }
      return {};
    },

    'auth.unlock': async (input, ctx) => {
      const me = ctx.me;
      try {
        await accounts.unlock(me, input);
      } catch (err) {
        ctx.record({ ...auditFields(me), action: 'unlock', contactIds: [], outcome: 'denied', errorCode: err instanceof CodedError ? err.code : 'INTERNAL' });
        if (err instanceof CodedError && err.code === 'ACCOUNT_LOCKED' && 'password' in input) {
          ctx.caller.unbind?.('signed_out');
        }
        throw err;
      }
      ctx.record({ ...auditFields(me), action: 'unlock', contactIds: [], outcome: 'ok' });
      deps.connections().sessionChanged(me.id);
      return accounts.whoami({ ...me, state: 'active' });
    },

    'auth.changePassword': async (input, ctx) => {
      await accounts.changePassword(ctx.me, input);
      return accounts.whoami(ctx.me);
    },

    'auth.setPin': async ({ pin, password }, ctx) => {
      await accounts.setPin(ctx.me, pin, password);
      return {};
    },

    'auth.twoFactor.begin': ({ password }, ctx) => accounts.beginTwoFactor(ctx.me, password),
    'auth.twoFactor.confirm': ({ code }, ctx) => ({ recoveryCodes: accounts.confirmTwoFactor(ctx.me, code) }),
    'auth.twoFactor.disable': async ({ password }, ctx) => {
      await accounts.disableTwoFactor(ctx.me, password);
      return {};
    },

    'users.list': () => repo.listUsers(db).map((u) => repo.toUser(u, now())),

    'users.create': async ({ username, displayName, roles, password }) => {
      const user = await accounts.createUser({ username, displayName, roles, password, oneTime: true });
      return repo.toUser(user, now());
    },

    'users.update': ({ userId, displayName, roles, disabled }, ctx) => {
      const ended = accounts.updateUser(ctx.me, userId, { displayName, roles, disabled });
      ctx.afterCommit(() => ended.forEach((id) => deps.connections().sessionEnded(id, 'disabled')));
      return repo.toUser(accounts.userOrThrow(userId), now());
    },

    'users.resetPassword': async ({ userId }) => {
      const { oneTimePassword, endedSessions } = await accounts.resetPassword(userId);
      endedSessions.forEach((id) => deps.connections().sessionEnded(id, 'password_reset'));
      return { oneTimePassword };
    },

    'users.resetTwoFactor': ({ userId }) => {
      accounts.resetTwoFactor(userId);
      return repo.toUser(accounts.userOrThrow(userId), now());
    },

    'users.unlock': ({ userId }) => {
      accounts.unlockUser(userId);
      return repo.toUser(accounts.userOrThrow(userId), now());
    },

    'sessions.list': (_p, ctx) => repo.listOpenSessions(db).map((row) => repo.toSessionInfo(row, ctx.me.id)),

    'sessions.revoke': ({ sessionId }, ctx) => {
      if (!accounts.endSession(sessionId, 'revoked')) throw new CodedError('NOT_FOUND', 'That session has already ended.');
      ctx.afterCommit(() => deps.connections().sessionEnded(sessionId, 'revoked'));
      return {};
    },

    'security.getSettings': () => accounts.settings(),
    'security.updateSettings': (patch) => accounts.updateSettings(patch),
    'security.alerts': ({ includeAcknowledged }) => repo.listAlerts(db, includeAcknowledged),
    'security.acknowledgeAlert': ({ alertId }, ctx) => {
      if (!repo.acknowledgeAlert(db, alertId, ctx.me.userId, now())) throw new CodedError('NOT_FOUND', 'No such alert, or it was acknowledged already.');
      return {};
    },

    'access.breakGlass': ({ conversationId, reason }, ctx) => {
      const conversation = getConversation(db, conversationId);
      if (!conversation) throw new CodedError('NOT_FOUND', `Conversation ${conversationId} does not exist.`);
      ctx.because(reason);
      ctx.concerns(conversation.contactId);
      const expiresAt = accounts.grantBreakGlass(ctx.me, conversation.contactId, reason);
      return { contactId: conversation.contactId, expiresAt };
    },
  };
}
