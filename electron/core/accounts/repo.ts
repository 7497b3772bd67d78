import { randomBytes } from 'node:crypto';
import type { Role, SecurityAlert, SessionInfo, SessionState, User } from '../../../shared/rpc';
import { RoleSchema } from '../../../shared/rpc';
import type { Database } from '../db/types';

/** Users, sessions and desk counters: plain functions over the encrypted database. */

export interface UserRow {
  id: string;
  username: string;
  display_name: string;
  roles: string;
  password_hash: string;
  must_change_password: number;
  disabled_at: number | null;
  totp_secret_sealed: string | null;
  totp_pending_sealed: string | null;
  totp_last_step: number | null;
  pin_hash: string | null;
  failed_count: number;
  last_failed_at: number | null;
  locked_until: number | null;
  created_at: number;
  updated_at: number;
  last_sign_in_at: number | null;
}

export interface SessionRow {
  id: string;
  user_id: string;
  origin: string;
  state: SessionState;
  started_at: number;
  last_active_at: number;
  ended_at: number | null;
  end_reason: string | null;
  pin_failures: number;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

export function parseRoles(json: string): Role[] {
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? parsed.filter((r): r is Role => RoleSchema.safeParse(r).success) : [];
}

export function countUsers(db: Database): number {
  return (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
}

/** An enabled user holding the admin role: while there is none, the first admin may be created. */
export function hasEnabledAdmin(db: Database): boolean {
  return (
    db.prepare(`SELECT 1 FROM users, json_each(users.roles) r WHERE users.disabled_at IS NULL AND r.value = 'admin' LIMIT 1`).get() !== undefined
  );
}

export function getUserById(db: Database, id: string): UserRow | undefined {
  return db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
}

export function getUserByUsername(db: Database, username: string): UserRow | undefined {
  return db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
}

export function listUsers(db: Database): UserRow[] {
  return db.prepare('SELECT * FROM users ORDER BY display_name COLLATE NOCASE, username').all() as UserRow[];
}

export function insertUser(
  db: Database,
  user: { id: string; username: string; displayName: string; roles: readonly Role[]; passwordHash: string; mustChangePassword: boolean },
  now: number,
): void {
  db.prepare(
    `INSERT INTO users (id, username, display_name, roles, password_hash, must_change_password, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(user.id, user.username, user.displayName, JSON.stringify([...new Set(user.roles)]), user.passwordHash, user.mustChangePassword ? 1 : 0, now, now);
}

/** Updates the named columns of one user; `updated_at` always. */
export function updateUser(db: Database, id: string, fields: Partial<Omit<UserRow, 'id' | 'created_at'>>, now: number): void {
  const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
  const sets = [...entries.map(([k]) => `${k} = @${k}`), 'updated_at = @updated_at'];
  db.prepare(`UPDATE users SET ${sets.join(', ')} WHERE id = @id`).run({ ...Object.fromEntries(entries), updated_at: now, id });
}

export function toUser(row: UserRow, now: number): User {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    roles: parseRoles(row.roles),
    disabled: row.disabled_at !== null,
    twoFactor: row.totp_secret_sealed !== null,
    lockedUntil: row.locked_until !== null && row.locked_until > now ? row.locked_until : null,
    mustChangePassword: row.must_change_password === 1,
    createdAt: row.created_at,
    lastSignInAt: row.last_sign_in_at,
  };
}

export function insertSession(db: Database, s: { id: string; userId: string; origin: string; state: SessionState }, now: number): void {
  db.prepare(`INSERT INTO sessions (id, user_id, origin, state, started_at, last_active_at) VALUES (?, ?, ?, ?, ?, ?)`).run(s.id, s.userId, s.origin, s.state, now, now);
}

export function getSession(db: Database, id: string): SessionRow | undefined {
  return db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
}

export function setSessionState(db: Database, id: string, state: SessionState): void {
  db.prepare('UPDATE sessions SET state = ?, pin_failures = CASE WHEN ? = \'active\' THEN 0 ELSE pin_failures END WHERE id = ? AND ended_at IS NULL').run(state, state, id);
}

/** Last activity, to the half minute: a write per call would cost a commit per read. */
export function touchSession(db: Database, id: string, now: number): void {
  db.prepare('UPDATE sessions SET last_active_at = ? WHERE id = ? AND ended_at IS NULL AND last_active_at < ?').run(now, id, now - 30_000);
}

/** Ends one session; false when it had already ended. */
export function endSession(db: Database, id: string, reason: string, now: number): boolean {
  return db.prepare('UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL').run(now, reason, id).changes > 0;
}

/** Ends every open session of a user (password reset, disabled); returns their ids. */
export function endUserSessions(db: Database, userId: string, reason: string, now: number): string[] {
  const ids = db.prepare('SELECT id FROM sessions WHERE user_id = ? AND ended_at IS NULL').pluck().all(userId) as string[];
  for (const id of ids) endSession(db, id, reason, now);
  return ids;
}

/** Sessions idle for longer than `maxIdleMs` are ended as expired; returns their ids. */
export function expireIdleSessions(db: Database, maxIdleMs: number, now: number): string[] {
  const ids = db.prepare('SELECT id FROM sessions WHERE ended_at IS NULL AND last_active_at < ?').pluck().all(now - maxIdleMs) as string[];
  for (const id of ids) endSession(db, id, 'expired', now);
  return ids;
}

export function listOpenSessions(db: Database): (SessionRow & { username: string; display_name: string; roles: string })[] {
  return db
    .prepare(
      `SELECT s.*, u.username, u.display_name, u.roles FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.ended_at IS NULL ORDER BY s.last_active_at DESC`,
    )
    .all() as (SessionRow & { username: string; display_name: string; roles: string })[];
}

export function toSessionInfo(row: SessionRow & { username: string; display_name: string; roles: string }, currentId: string | null): SessionInfo {
  return {
    id: row.id,
    userId: row.user_id,
    username: row.username,
    displayName: row.display_name,
    roles: parseRoles(row.roles),
    origin: row.origin,
    state: row.state,
    startedAt: row.started_at,
    lastActiveAt: row.last_active_at,
    current: row.id === currentId,
  };
}

/** Who signed in from this desk lately, newest first (for "Switch user"). */
export function recentUsersAt(db: Database, origin: string, limit: number): { username: string; displayName: string }[] {
  return db
    .prepare(
      `SELECT u.username, u.display_name AS displayName, max(s.started_at) AS last FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.origin = ? AND u.disabled_at IS NULL GROUP BY u.id ORDER BY last DESC LIMIT ?`,
    )
    .all(origin, limit)
    .map((r) => {
      const { username, displayName } = r as { username: string; displayName: string };
      return { username, displayName };
    });
}

export function deskFailures(db: Database, origin: string): { failed_count: number; last_failed_at: number } | undefined {
  return db.prepare('SELECT failed_count, last_failed_at FROM desk_failures WHERE origin = ?').get(origin) as
    | { failed_count: number; last_failed_at: number }
    | undefined;
}

export function recordDeskFailure(db: Database, origin: string, now: number): number {
  db.prepare(
    `INSERT INTO desk_failures (origin, failed_count, last_failed_at) VALUES (?, 1, ?)
     ON CONFLICT (origin) DO UPDATE SET failed_count = failed_count + 1, last_failed_at = excluded.last_failed_at`,
  ).run(origin, now);
  return deskFailures(db, origin)!.failed_count;
}

export function clearDeskFailures(db: Database, origin: string): void {
  db.prepare('DELETE FROM desk_failures WHERE origin = ?').run(origin);
}

export function grantBreakGlass(db: Database, g: { sessionId: string; userId: string; contactId: number; reason: string }, now: number, ttlMs: number): number {
  const expiresAt = now + ttlMs;
  db.prepare('INSERT INTO break_glass (session_id, user_id, contact_id, reason, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(
    g.sessionId,
    g.userId,
    g.contactId,
    g.reason,
    now,
    expiresAt,
  );
  return expiresAt;
}

export function hasBreakGlassGrant(db: Database, sessionId: string, contactId: number, now: number): boolean {
  return db.prepare('SELECT 1 FROM break_glass WHERE session_id = ? AND contact_id = ? AND expires_at > ?').get(sessionId, contactId, now) !== undefined;
}

interface AlertRow {
  id: number;
  kind: SecurityAlert['kind'];
  at: number;
  user_id: string | null;
  display_name: string | null;
  origin: string | null;
  count: number | null;
  acknowledged_at: number | null;
}

export function insertAlert(db: Database, a: Omit<SecurityAlert, 'id' | 'acknowledgedAt'>): SecurityAlert {
  const id = Number(
    db
      .prepare('INSERT INTO security_alerts (kind, at, user_id, display_name, origin, count) VALUES (?, ?, ?, ?, ?, ?)')
      .run(a.kind, a.at, a.userId, a.displayName, a.origin, a.count).lastInsertRowid,
  );
  return { ...a, id, acknowledgedAt: null };
}

export function listAlerts(db: Database, includeAcknowledged: boolean): SecurityAlert[] {
  const rows = db
    .prepare(`SELECT * FROM security_alerts ${includeAcknowledged ? '' : 'WHERE acknowledged_at IS NULL'} ORDER BY at DESC, id DESC LIMIT 200`)
    .all() as AlertRow[];
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    at: r.at,
    userId: r.user_id,
    displayName: r.display_name,
    origin: r.origin,
    count: r.count,
    acknowledgedAt: r.acknowledged_at,
  }));
}

export function acknowledgeAlert(db: Database, id: number, by: string, now: number): boolean {
  return db.prepare('UPDATE security_alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL').run(now, by, id).changes > 0;
}
