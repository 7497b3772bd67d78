import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import type { Role, SecuritySettings, SessionState, Whoami } from '../../../shared/rpc';
import { SecuritySettingsSchema } from '../../../shared/rpc';
import type { Database } from '../db/types';
import { getSetting, setSetting } from '../db/repo/settings';
import type { Session } from '../types';
import { hashSecret as hashWith, needsRehash, passwordRejectedError, passwordRejection, verifySecret, ARGON2_PARAMS, type HashCost } from './passwords';
import * as repo from './repo';
import type { Sealer } from './seal';
import { LOCKOUT_AFTER_FAILURES, LOCKOUT_MS, PIN_MAX_FAILURES, waitBeforeAttempt } from './throttle';
import { checkTotp, hashRecoveryCode, newRecoveryCodes, newTotpEnrolment } from './totp';

export const DEFAULT_SECURITY_SETTINGS: SecuritySettings = {
  idleLockMinutes: 5,
  requireTwoFactorForAdmins: false,
  requireTwoFactorForAuditors: false,
  patientsPerHourAlert: 50,
  failedSignInsAlert: 10,
  openingHours: null,
  clinicName: '',
};

/** A session nobody used for this long ends by itself (the desk lock comes much earlier). */
export const SESSION_MAX_IDLE_MS = 12 * 60 * 60_000;
/** How long break-the-glass access to one patient lasts. */
export const BREAK_GLASS_MS = 30 * 60_000;

export interface AccountsDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  /** Seals TOTP secrets under a key derived from the database key. */
  sealer: Sealer;
  /** argon2id's cost; the product's default unless a test or benchmark lowers it on purpose. */
  hashCost?: HashCost;
}

/** A failed attempt, for the audit log: never the password or code, and a user id only when the username exists. */
export interface FailedAttempt {
  userId: string | null;
  code: 'UNAUTHENTICATED' | 'ACCOUNT_LOCKED' | 'RATE_LIMITED' | 'SECOND_FACTOR_INVALID' | 'FORBIDDEN';
}

export type SignInOutcome =
  | { kind: 'signed_in'; session: Session; user: repo.UserRow }
  | { kind: 'second_factor_required' }
  | { kind: 'failed'; error: CodedError; attempt: FailedAttempt; failures: { user: number; desk: number } };


export type AccountsService = ReturnType<typeof createAccounts>;

/**
 * Local accounts: the first admin, sign-in with its delay and lockout, two-factor, the desk's
 * lock and PIN, and the sessions that bind a person to a connection. Role checks are `dispatch`'s;
 * this decides who someone is.
 */
export function createAccounts(deps: AccountsDeps) {
  const { db, now, logger, sealer } = deps;
  const cost = deps.hashCost ?? ARGON2_PARAMS;
  const hashSecret = (secret: string) => hashWith(secret, cost);
  /** Hash of a random password: unknown usernames cost one verification too, so timing does not tell them apart. */
  let dummyHash: Promise<string> | null = null;

  function settings(): SecuritySettings {
    const raw = getSetting(db, 'security');
    if (!raw) return DEFAULT_SECURITY_SETTINGS;
    const parsed = SecuritySettingsSchema.safeParse({ ...DEFAULT_SECURITY_SETTINGS, ...(JSON.parse(raw) as object) });
    if (!parsed.success) {
      logger.warn('stored security settings did not parse; using the defaults');
      return DEFAULT_SECURITY_SETTINGS;
    }
    return parsed.data;
  }

  function updateSettings(patch: Partial<SecuritySettings>): SecuritySettings {
    const next = SecuritySettingsSchema.parse({ ...settings(), ...patch });
    setSetting(db, 'security', JSON.stringify(next), now());
    return next;
  }

  function twoFactorRequired(roles: readonly Role[]): boolean {
    const s = settings();
    return (s.requireTwoFactorForAdmins && roles.includes('admin')) || (s.requireTwoFactorForAuditors && roles.includes('auditor'));
  }

  function sessionFromRows(row: repo.SessionRow, user: repo.UserRow): Session {
    return {
      id: row.id,
      userId: user.id,
      username: user.username,
      displayName: user.display_name,
      roles: repo.parseRoles(user.roles),
      state: row.state,
      origin: row.origin,
    };
  }

  /**
   * The live session behind a connection, or why it is gone. Called before every call: a revoked,
   * expired or disabled session is refused on its next call.
   */
  function resolveSession(id: string): { session: Session } | { ended: 'revoked' | 'expired' | 'signed_out' | 'password_reset' | 'disabled' } {
    const row = repo.getSession(db, id);
    const user = row ? repo.getUserById(db, row.user_id) : undefined;
    if (!row || !user) return { ended: 'revoked' };
    if (row.ended_at !== null) return { ended: (row.end_reason as 'revoked') ?? 'revoked' };
    if (user.disabled_at !== null) {
      repo.endSession(db, id, 'disabled', now());
      return { ended: 'disabled' };
    }
    if (row.last_active_at + SESSION_MAX_IDLE_MS < now()) {
      repo.endSession(db, id, 'expired', now());
      return { ended: 'expired' };
    }
    return { session: sessionFromRows(row, user) };
  }

  function whoami(session: Session | null): Whoami {
    if (!session) return { signedIn: false };
    const user = repo.getUserById(db, session.userId);
    if (!user) return { signedIn: false };
    const roles = repo.parseRoles(user.roles);
    return {
      signedIn: true,
      sessionId: session.id,
      userId: user.id,
      username: user.username,
      displayName: user.display_name,
      roles,
      state: repo.getSession(db, session.id)?.state ?? session.state,
      twoFactor: user.totp_secret_sealed !== null,
      mustEnrolTwoFactor: user.totp_secret_sealed === null && twoFactorRequired(roles),
      hasPin: user.pin_hash !== null,
      idleLockMinutes: settings().idleLockMinutes,
    };
  }

  function openSession(user: repo.UserRow, origin: string): Session {
    const state: SessionState = user.must_change_password === 1 ? 'password_change' : 'active';
    const id = repo.newId('s');
    repo.insertSession(db, { id, userId: user.id, origin, state }, now());
    return sessionFromRows(repo.getSession(db, id)!, user);
  }

  async function checkedPasswordHash(password: string, ctx: { username: string; displayName?: string; hasSecondFactor: boolean }): Promise<string> {
    const problem = passwordRejection(password, { ...ctx, clinicName: settings().clinicName });
    if (problem) throw passwordRejectedError(problem);
    return hashSecret(password);
  }

  async function createUser(
    input: { username: string; displayName: string; roles: readonly Role[]; password: string; oneTime: boolean },
    /** Checked again right before the insert, after the (slow) hash: a racing request may have won. */
    stillAllowed: () => void = () => undefined,
  ): Promise<repo.UserRow> {
    if (repo.getUserByUsername(db, input.username)) throw new CodedError('CONFLICT', `The username ${input.username} is taken.`);
    // A one-time password only has to survive until the user replaces it, but it is still checked.
    const passwordHash = await checkedPasswordHash(input.password, { username: input.username, displayName: input.displayName, hasSecondFactor: false });
    stillAllowed();
    if (repo.getUserByUsername(db, input.username)) throw new CodedError('CONFLICT', `The username ${input.username} is taken.`);
    const id = repo.newId('u');
    repo.insertUser(db, { id, username: input.username, displayName: input.displayName, roles: input.roles, passwordHash, mustChangePassword: input.oneTime }, now());
    return repo.getUserById(db, id)!;
  }

  async function createFirstAdmin(input: { username: string; displayName: string; password: string }, origin: string): Promise<Session> {
    const noAdminYet = (): void => {
      if (repo.hasEnabledAdmin(db)) throw new CodedError('FORBIDDEN', 'This installation already has an administrator. Sign in instead.');
    };
    noAdminYet();
    const user = await createUser({ ...input, roles: ['admin'], oneTime: false }, noAdminYet);
    return openSession(user, origin);
  }

  async function signIn(input: { username: string; password: string; secondFactor?: string | undefined }, origin: string): Promise<SignInOutcome> {
    const at = now();
    const desk = repo.deskFailures(db, origin);
    const deskWait = desk ? waitBeforeAttempt(desk.failed_count, desk.last_failed_at, at) : 0;
    let user = repo.getUserByUsername(db, input.username);
    const failed = (code: FailedAttempt['code'], message: string, counts = true): SignInOutcome => {
      let userFailures = user?.failed_count ?? 0;
      let deskFailures = desk?.failed_count ?? 0;
      if (counts) {
        deskFailures = repo.recordDeskFailure(db, origin, at);
        if (user) {
          userFailures = user.failed_count + 1;
          const lock = userFailures >= LOCKOUT_AFTER_FAILURES;
          repo.updateUser(db, user.id, { failed_count: lock ? 0 : userFailures, last_failed_at: at, ...(lock ? { locked_until: at + LOCKOUT_MS } : {}) }, at);
          if (lock) {
            logger.warn({ userId: user.id }, 'account locked after repeated failed sign-ins');
            message = `Wrong password ${LOCKOUT_AFTER_FAILURES} times: this account is locked for ${LOCKOUT_MS / 60_000} minutes or until an admin unlocks it.`;
            code = 'ACCOUNT_LOCKED';
          }
        }
      }
      const errorCode = code === 'ACCOUNT_LOCKED' ? 'ACCOUNT_LOCKED' : code === 'RATE_LIMITED' ? 'RATE_LIMITED' : code === 'SECOND_FACTOR_INVALID' ? 'SECOND_FACTOR_INVALID' : 'UNAUTHENTICATED';
      return { kind: 'failed', error: new CodedError(errorCode, message), attempt: { userId: user?.id ?? null, code }, failures: { user: userFailures, desk: deskFailures } };
    };

    if (deskWait > 0) return failed('RATE_LIMITED', `Too many failed sign-ins at this desk. Try again in ${Math.ceil(deskWait / 1000)} s.`, false);
    if (user?.locked_until != null && user.locked_until > at) {
      const minutes = Math.ceil((user.locked_until - at) / 60_000);
      return failed('ACCOUNT_LOCKED', `This account is locked after repeated failed sign-ins. Try again in ${minutes} min, or ask an admin to unlock it.`, false);
    }
    const userWait = user ? waitBeforeAttempt(user.failed_count, user.last_failed_at, at) : 0;
    if (userWait > 0) return failed('RATE_LIMITED', `Too many failed sign-ins for this account. Try again in ${Math.ceil(userWait / 1000)} s.`, false);

    dummyHash ??= hashSecret(randomBytes(16).toString('hex'));
    const good = await verifySecret(user?.password_hash ?? (await dummyHash), input.password);
    user = user ? repo.getUserById(db, user.id) : undefined;
    if (!good || !user) return failed('UNAUTHENTICATED', 'Wrong username or password.');
    if (user.disabled_at !== null) return failed('FORBIDDEN', 'This account is disabled. Ask an admin to enable it.', false);

    if (user.totp_secret_sealed !== null) {
      if (!input.secondFactor) return { kind: 'second_factor_required' };
      if (!useSecondFactor(user, input.secondFactor)) return failed('SECOND_FACTOR_INVALID', 'That code is not right (or was used already). Enter the current code from your app, or a recovery code.');
    }

    const fields: Partial<repo.UserRow> = { failed_count: 0, last_failed_at: null, locked_until: null, last_sign_in_at: at };
    if (needsRehash(user.password_hash, cost)) fields.password_hash = await hashSecret(input.password);
    repo.updateUser(db, user.id, fields, at);
    repo.clearDeskFailures(db, origin);
    return { kind: 'signed_in', session: openSession(repo.getUserById(db, user.id)!, origin), user: repo.getUserById(db, user.id)! };
  }

  /** A TOTP code (once per step) or an unused recovery code (then it is spent). */
  function useSecondFactor(user: repo.UserRow, code: string): boolean {
    const trimmed = code.trim();
    if (/^\d{6}$/.test(trimmed.replace(/\s+/g, ''))) {
      const secret = sealer.open(user.totp_secret_sealed!, user.id);
      const step = checkTotp(secret, trimmed, now(), user.totp_last_step);
      if (step === null) return false;
      // The step only moves forward; a concurrent use of the same code loses this update.
      return db.prepare('UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)').run(step, user.id, step).changes === 1;
    }
    return (
      db.prepare('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL').run(now(), user.id, hashRecoveryCode(trimmed)).changes === 1
    );
  }

  async function requirePassword(session: Session, password: string): Promise<repo.UserRow> {
    const user = repo.getUserById(db, session.userId)!;
    if (!(await verifySecret(user.password_hash, password))) throw new CodedError('UNAUTHENTICATED', 'That is not your password.');
    return user;
  }

  async function changePassword(session: Session, input: { currentPassword?: string | undefined; newPassword: string }): Promise<void> {
    if (session.state === 'locked') throw new CodedError('SESSION_LOCKED', 'The desk is locked. Unlock it first.');
    const user = repo.getUserById(db, session.userId)!;
    const mustChange = user.must_change_password === 1;
    if (!mustChange) {
      if (!input.currentPassword) throw new CodedError('VALIDATION_FAILED', 'Enter your current password.');
      await requirePassword(session, input.currentPassword);
    }
    if (await verifySecret(user.password_hash, input.newPassword)) throw passwordRejectedError({ reason: 'unchanged', message: 'Choose a new password, not the one you have now.' });
    const passwordHash = await checkedPasswordHash(input.newPassword, { username: user.username, displayName: user.display_name, hasSecondFactor: user.totp_secret_sealed !== null });
    repo.updateUser(db, user.id, { password_hash: passwordHash, must_change_password: 0 }, now());
    if (session.state === 'password_change') repo.setSessionState(db, session.id, 'active');
  }

  /** Locked: the session stays; only its owner's PIN or password opens it again. */
  function lock(session: Session): void {
    if (session.state === 'active') repo.setSessionState(db, session.id, 'locked');
  }

  async function unlock(session: Session, input: { pin: string } | { password: string }): Promise<void> {
    // Checked even when the session is not locked: a window showing its lock screen (say, after
    // a failed lock call) must not open for a wrong PIN.
    const row = repo.getSession(db, session.id)!;
    const user = repo.getUserById(db, session.userId)!;
    if ('pin' in input) {
      if (!user.pin_hash) throw new CodedError('VALIDATION_FAILED', 'No PIN is set for this account; unlock with your password.');
      if (row.pin_failures >= PIN_MAX_FAILURES) throw new CodedError('ACCOUNT_LOCKED', 'Too many wrong PINs: unlock with your password.');
      if (!(await verifySecret(user.pin_hash, input.pin))) {
        db.prepare('UPDATE sessions SET pin_failures = pin_failures + 1 WHERE id = ?').run(session.id);
        const left = PIN_MAX_FAILURES - row.pin_failures - 1;
        throw new CodedError(left > 0 ? 'UNAUTHENTICATED' : 'ACCOUNT_LOCKED', left > 0 ? `Wrong PIN. ${left} more ${left === 1 ? 'try' : 'tries'}, then your password is needed.` : 'Too many wrong PINs: unlock with your password.');
      }
    } else {
      const wait = waitBeforeAttempt(user.failed_count, user.last_failed_at, now());
      if (wait > 0) throw new CodedError('RATE_LIMITED', `Too many failed attempts. Try again in ${Math.ceil(wait / 1000)} s.`);
      if (!(await verifySecret(user.password_hash, input.password))) {
        const failures = user.failed_count + 1;
        const lockAccount = failures >= LOCKOUT_AFTER_FAILURES;
        repo.updateUser(db, user.id, { failed_count: lockAccount ? 0 : failures, last_failed_at: now(), ...(lockAccount ? { locked_until: now() + LOCKOUT_MS } : {}) }, now());
        if (lockAccount) {
          repo.endSession(db, session.id, 'signed_out', now());
          throw new CodedError('ACCOUNT_LOCKED', 'Wrong password too many times: you were signed out and the account is locked for 15 minutes.');
        }
        throw new CodedError('UNAUTHENTICATED', 'Wrong password.');
      }
      repo.updateUser(db, user.id, { failed_count: 0, last_failed_at: null }, now());
    }
    repo.setSessionState(db, session.id, 'active');
  }

  async function setPin(session: Session, pin: string | null, password: string): Promise<void> {
    await requirePassword(session, password);
    repo.updateUser(db, session.userId, { pin_hash: pin === null ? null : await hashSecret(pin) }, now());
  }

  async function beginTwoFactor(session: Session, password: string) {
    await requirePassword(session, password);
    const enrolment = await newTotpEnrolment(session.username);
    repo.updateUser(db, session.userId, { totp_pending_sealed: sealer.seal(enrolment.secret, `${session.userId}:pending`) }, now());
    return enrolment;
  }

  function confirmTwoFactor(session: Session, code: string): string[] {
    const user = repo.getUserById(db, session.userId)!;
    if (!user.totp_pending_sealed) throw new CodedError('CONFLICT', 'Start the two-factor set-up first.');
    const secret = sealer.open(user.totp_pending_sealed, `${user.id}:pending`);
    const step = checkTotp(secret, code, now(), null);
    if (step === null) throw new CodedError('SECOND_FACTOR_INVALID', 'That code does not match. Check the time on your phone and enter the current code.');
    const { codes, hashes } = newRecoveryCodes();
    repo.updateUser(db, user.id, { totp_secret_sealed: sealer.seal(secret, user.id), totp_pending_sealed: null, totp_last_step: step }, now());
    db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(user.id);
    const insert = db.prepare('INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)');
    for (const h of hashes) insert.run(user.id, h);
    return codes;
  }

  function clearTwoFactor(userId: string): void {
    repo.updateUser(db, userId, { totp_secret_sealed: null, totp_pending_sealed: null, totp_last_step: null }, now());
    db.prepare('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
  }

  /** Sixteen characters from a 31-letter alphabet (~79 bits): passes the policy, read out over the phone. */
  function oneTimePassword(): string {
    const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
    const chars = [...randomBytes(16)].map((b) => alphabet[b % alphabet.length]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}-${chars.slice(12, 16)}`;
  }

  async function resetPassword(userId: string): Promise<{ oneTimePassword: string; endedSessions: string[] }> {
    const user = repo.getUserById(db, userId);
    if (!user) throw new CodedError('NOT_FOUND', 'No such user.');
    const password = oneTimePassword();
    const passwordHash = await hashSecret(password);
    repo.updateUser(db, userId, { password_hash: passwordHash, must_change_password: 1, failed_count: 0, locked_until: null, last_failed_at: null }, now());
    return { oneTimePassword: password, endedSessions: repo.endUserSessions(db, userId, 'password_reset', now()) };
  }

  function userOrThrow(userId: string): repo.UserRow {
    const user = repo.getUserById(db, userId);
    if (!user) throw new CodedError('NOT_FOUND', 'No such user.');
    return user;
  }

  /** Roles and enabled state; refuses to leave the installation without an enabled admin. */
  function updateUser(actor: Session, userId: string, input: { displayName?: string | undefined; roles?: Role[] | undefined; disabled?: boolean | undefined }): string[] {
    const user = userOrThrow(userId);
    const fields: Partial<repo.UserRow> = {};
    if (input.displayName !== undefined) fields.display_name = input.displayName;
    if (input.roles !== undefined) fields.roles = JSON.stringify([...new Set(input.roles)]);
    if (input.disabled !== undefined) fields.disabled_at = input.disabled ? (user.disabled_at ?? now()) : null;
    if (input.disabled && userId === actor.userId) throw new CodedError('CONFLICT', 'You cannot disable your own account.');
    repo.updateUser(db, userId, fields, now());
    if (!repo.hasEnabledAdmin(db)) throw new CodedError('CONFLICT', 'At least one enabled user must keep the admin role.');
    return input.disabled ? repo.endUserSessions(db, userId, 'disabled', now()) : [];
  }

  return {
    settings,
    updateSettings,
    resolveSession,
    whoami,
    hasAdmin: () => repo.hasEnabledAdmin(db),
    createFirstAdmin,
    createUser,
    signIn,
    changePassword,
    lock,
    unlock,
    setPin,
    beginTwoFactor,
    confirmTwoFactor,
    async disableTwoFactor(session: Session, password: string): Promise<void> {
      await requirePassword(session, password);
      if (twoFactorRequired(session.roles)) throw new CodedError('FORBIDDEN', 'The clinic requires two-factor sign-in for your role.');
      clearTwoFactor(session.userId);
    },
    resetTwoFactor: (userId: string) => (userOrThrow(userId), clearTwoFactor(userId)),
    unlockUser: (userId: string) => (userOrThrow(userId), repo.updateUser(db, userId, { failed_count: 0, locked_until: null, last_failed_at: null }, now())),
    resetPassword,
    updateUser,
    userOrThrow,
    touch: (sessionId: string) => repo.touchSession(db, sessionId, now()),
    endSession: (sessionId: string, reason: string) => repo.endSession(db, sessionId, reason, now()),
    expireIdle: () => repo.expireIdleSessions(db, SESSION_MAX_IDLE_MS, now()),
    grantBreakGlass: (session: Session, contactId: number, reason: string) =>
      repo.grantBreakGlass(db, { sessionId: session.id, userId: session.userId, contactId, reason }, now(), BREAK_GLASS_MS),
    hasBreakGlass: (session: Session, contactId: number) => repo.hasBreakGlassGrant(db, session.id, contactId, now()),
  };
}
