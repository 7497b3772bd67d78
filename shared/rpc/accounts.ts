import { z } from 'zod';
import { Id, ROLES, RoleSchema, method } from './common';

/**
 * Local accounts, sign-in, sessions, the shared desk's lock, two-factor and break-the-glass.
 * A connection starts signed out; these methods are how it becomes a session (DESIGN.md,
 * "Connections and sessions").
 */

/** NIST SP 800-63B-4: 15 characters without a second factor, 8 with one; up to 128. */
export const PASSWORD_MIN_WITHOUT_2FA = 15;
export const PASSWORD_MIN_WITH_2FA = 8;
export const PASSWORD_MAX = 128;
/** Length is checked by the core (after NFKC, in code points), so the message can name the rule that applies. */
export const PasswordInputSchema = z.string().min(1, 'enter a password').max(PASSWORD_MAX * 4);
export const UsernameSchema = z
  .string()
  .trim()
  .toLowerCase()
  .min(2, 'a username has at least 2 characters')
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'a username uses letters, digits, dots, dashes and underscores');
export const DisplayNameSchema = z.string().trim().min(1, 'enter a name').max(120);
export const PinSchema = z.string().regex(/^\d{4,8}$/, 'a PIN is 4 to 8 digits');
/** A TOTP code (6 digits) or a recovery code (`xxxx-xxxx`, letters and digits). */
export const SecondFactorSchema = z.string().trim().min(6).max(20);

export const SessionStateSchema = z.enum(['active', 'locked', 'password_change']);
export type SessionState = z.infer<typeof SessionStateSchema>;

export const WhoamiSchema = z.discriminatedUnion('signedIn', [
  z.object({ signedIn: z.literal(false) }),
  z.object({
    signedIn: z.literal(true),
    sessionId: z.string(),
    userId: z.string(),
    username: z.string(),
    displayName: z.string(),
    roles: z.array(RoleSchema).min(1),
    /** `locked`: only unlock or sign-out; `password_change`: the user must set a new password first. */
    state: SessionStateSchema,
    twoFactor: z.boolean(),
    /** The clinic requires two-factor for one of this user's roles and they have not enrolled yet. */
    mustEnrolTwoFactor: z.boolean(),
    hasPin: z.boolean(),
    /** Minutes without input before the desk locks itself. */
    idleLockMinutes: z.number().int().min(1).max(60),
  }),
]);
export type Whoami = z.infer<typeof WhoamiSchema>;

export const UserSchema = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  roles: z.array(RoleSchema),
  disabled: z.boolean(),
  twoFactor: z.boolean(),
  /** Locked out after too many failed sign-ins, until this time (ms) or an admin unlocks. */
  lockedUntil: z.number().int().nullable(),
  mustChangePassword: z.boolean(),
  createdAt: z.number().int(),
  lastSignInAt: z.number().int().nullable(),
});
export type User = z.infer<typeof UserSchema>;

export const SessionInfoSchema = z.object({
  id: z.string(),
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  roles: z.array(RoleSchema),
  origin: z.string(),
  state: SessionStateSchema,
  startedAt: z.number().int(),
  lastActiveAt: z.number().int(),
  /** The caller's own session. */
  current: z.boolean(),
});
export type SessionInfo = z.infer<typeof SessionInfoSchema>;

export const SignInResultSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('signed_in'), whoami: WhoamiSchema }),
  /** Password right; send it again with `secondFactor` (a TOTP code or a recovery code). */
  z.object({ status: z.literal('second_factor_required') }),
]);
export type SignInResult = z.infer<typeof SignInResultSchema>;

export const OpeningHoursSchema = z.object({
  /** 0 = Sunday … 6 = Saturday. */
  days: z.array(z.number().int().min(0).max(6)).max(7),
  /** Local time, "HH:MM". */
  opens: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
  closes: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
});

export const SecuritySettingsSchema = z.object({
  idleLockMinutes: z.number().int().min(1).max(60),
  requireTwoFactorForAdmins: z.boolean(),
  requireTwoFactorForAuditors: z.boolean(),
  /** Alert when one user opens more distinct patients than this within an hour. */
  patientsPerHourAlert: z.number().int().min(1).max(100_000),
  /** Alert when an account or a desk piles up more than this many failed sign-ins within an hour. */
  failedSignInsAlert: z.number().int().min(1).max(1000),
  /** Sign-ins outside these hours raise an alert; null: no opening hours set. */
  openingHours: OpeningHoursSchema.nullable(),
  /** The clinic's name, refused inside passwords. */
  clinicName: z.string().trim().max(120),
});
export type SecuritySettings = z.infer<typeof SecuritySettingsSchema>;

export const AlertKindSchema = z.enum(['many_patients', 'outside_hours', 'failed_sign_ins']);
export const SecurityAlertSchema = z.object({
  id: Id,
  kind: AlertKindSchema,
  at: z.number().int(),
  /** The user concerned, if any (never a patient). */
  userId: z.string().nullable(),
  displayName: z.string().nullable(),
  origin: z.string().nullable(),
  /** What was counted (patients opened, failed sign-ins). */
  count: z.number().int().nullable(),
  acknowledgedAt: z.number().int().nullable(),
});
export type SecurityAlert = z.infer<typeof SecurityAlertSchema>;

const ok = z.object({});

export const accountsMethods = {
  /** Who this connection is; `signedIn: false` before sign-in. */
  'session.whoami': method({ input: z.object({}), output: WhoamiSchema, roles: ROLES, signedOut: true, whileLocked: true, whilePasswordChange: true }),
  /** What the sign-in screen needs: is there an admin yet, and who used this desk recently. */
  'auth.status': method({
    input: z.object({}),
    output: z.object({
      hasAdmin: z.boolean(),
      /** Users who signed in from this desk lately (username and name only), newest first. */
      recentUsers: z.array(z.object({ username: z.string(), displayName: z.string() })).max(8),
    }),
    roles: ROLES,
    signedOut: true,
    whileLocked: true,
    whilePasswordChange: true,
  }),
  /** Only while the installation has no enabled admin (first run, or data from an earlier version). */
  'auth.createFirstAdmin': method({
    input: z.object({ displayName: DisplayNameSchema, username: UsernameSchema, password: PasswordInputSchema }),
    output: WhoamiSchema,
    roles: ROLES,
    signedOut: true,
    audit: 'create',
  }),
  'auth.signIn': method({
    input: z.object({ username: UsernameSchema, password: PasswordInputSchema, secondFactor: SecondFactorSchema.optional() }),
    output: SignInResultSchema,
    roles: ROLES,
    signedOut: true,
  }),
  'auth.signOut': method({ input: z.object({}), output: ok, roles: ROLES, whileLocked: true, whilePasswordChange: true }),
  /** The desk went idle or the user pressed Lock: the session stays, the screen hides everything. */
  'auth.lock': method({ input: z.object({}), output: ok, roles: ROLES, whileLocked: true }),
  'auth.unlock': method({
    input: z.union([z.object({ pin: PinSchema }), z.object({ password: PasswordInputSchema })]),
    output: WhoamiSchema,
    roles: ROLES,
    whileLocked: true,
  }),
  /** Own password. `currentPassword` is not asked while the session must change a one-time password. */
  'auth.changePassword': method({
    input: z.object({ currentPassword: PasswordInputSchema.optional(), newPassword: PasswordInputSchema }),
    output: WhoamiSchema,
    roles: ROLES,
    whilePasswordChange: true,
    audit: 'update',
  }),
  /** Own PIN for unlocking the shared desk; confirmed with the password. */
  'auth.setPin': method({
    input: z.object({ pin: PinSchema.nullable(), password: PasswordInputSchema }),
    output: ok,
    roles: ROLES,
    audit: 'update',
  }),
  /** Starts TOTP enrolment: the secret as text and as a QR code; nothing is kept until confirmed. */
  'auth.twoFactor.begin': method({
    input: z.object({ password: PasswordInputSchema }),
    output: z.object({ secret: z.string(), otpauthUri: z.string(), qrSvg: z.string() }),
    roles: ROLES,
  }),
  /** One code from the app proves the enrolment; the recovery codes are shown once. */
  'auth.twoFactor.confirm': method({
    input: z.object({ code: z.string().regex(/^\d{6}$/, 'enter the 6-digit code from the app') }),
    output: z.object({ recoveryCodes: z.array(z.string()).length(10) }),
    roles: ROLES,
    audit: 'configure',
  }),
  'auth.twoFactor.disable': method({
    input: z.object({ password: PasswordInputSchema }),
    output: ok,
    roles: ROLES,
    audit: 'configure',
  }),

  'users.list': method({ input: z.object({}), output: z.array(UserSchema), roles: ['admin', 'auditor'] }),
  /** The admin gives a one-time password; the user sets their own at first sign-in. */
  'users.create': method({
    input: z.object({ username: UsernameSchema, displayName: DisplayNameSchema, roles: z.array(RoleSchema).min(1), password: PasswordInputSchema }),
    output: UserSchema,
    roles: ['admin'],
    audit: 'create',
  }),
  'users.update': method({
    input: z.object({ userId: z.string(), displayName: DisplayNameSchema.optional(), roles: z.array(RoleSchema).min(1).optional(), disabled: z.boolean().optional() }),
    output: UserSchema,
    roles: ['admin'],
    audit: 'update',
  }),
  /** Sets a one-time password (shown once to the admin) and ends the user's sessions. */
  'users.resetPassword': method({
    input: z.object({ userId: z.string() }),
    output: z.object({ oneTimePassword: z.string() }),
    roles: ['admin'],
    audit: 'update',
  }),
  'users.resetTwoFactor': method({ input: z.object({ userId: z.string() }), output: UserSchema, roles: ['admin'], audit: 'configure' }),
  /** Lifts a lockout after failed sign-ins. */
  'users.unlock': method({ input: z.object({ userId: z.string() }), output: UserSchema, roles: ['admin'], audit: 'update' }),

  'sessions.list': method({ input: z.object({}), output: z.array(SessionInfoSchema), roles: ['admin'] }),
  /** Ends a session; its window returns to the sign-in screen at once (`session.ended`). */
  'sessions.revoke': method({ input: z.object({ sessionId: z.string() }), output: ok, roles: ['admin'], audit: 'revoke' }),

  'security.getSettings': method({ input: z.object({}), output: SecuritySettingsSchema, roles: ['admin', 'auditor'] }),
  'security.updateSettings': method({ input: SecuritySettingsSchema.partial(), output: SecuritySettingsSchema, roles: ['admin'], audit: 'configure' }),
  'security.alerts': method({ input: z.object({ includeAcknowledged: z.boolean().default(false) }), output: z.array(SecurityAlertSchema), roles: ['admin', 'auditor'] }),
  'security.acknowledgeAlert': method({ input: z.object({ alertId: Id }), output: ok, roles: ['admin', 'auditor'], audit: 'update' }),

  /**
   * Break the glass: a user without the receptionist role opens one patient's conversation in an
   * emergency. The reason is kept in the audit entry; the access ends by itself.
   */
  'access.breakGlass': method({
    input: z.object({ conversationId: Id, reason: z.string().trim().min(10, 'say why, in at least 10 characters').max(500) }),
    output: z.object({ contactId: Id, expiresAt: z.number().int() }),
    roles: ['admin', 'auditor'],
    audit: 'break_glass',
  }),
} as const;

export const accountsEvents = {
  /** This connection's session ended (signed out, revoked, expired); the window shows sign-in. */
  'session.ended': z.object({ reason: z.enum(['signed_out', 'revoked', 'expired', 'password_reset', 'disabled']) }),
  /** This connection's session was locked (idle elsewhere, or by the core) or unlocked. */
  'session.changed': z.object({}),
  'security.alert': SecurityAlertSchema,
} as const;
