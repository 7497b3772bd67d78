import type { Logger } from 'pino';
import type { RpcEventName, RpcEventPayload, SecurityAlert, SecuritySettings } from '../../../shared/rpc';
import type { Database } from '../db/types';
import type { AuditRecord } from '../rpc/dispatch';
import type { Session } from '../types';
import { getUserById, insertAlert, parseRoles } from './repo';

const HOUR = 60 * 60_000;

export interface AnomalyDeps {
  db: Database;
  now: () => number;
  settings: () => SecuritySettings;
  /** Appends to the audit log (the alert is an entry of its own). */
  audit: (record: AuditRecord) => void;
  /** Pushes an event to every signed-in window. */
  broadcast: <E extends RpcEventName>(event: E, payload: RpcEventPayload<E>) => void;
  logger: Logger;
}

type Kind = SecurityAlert['kind'];

/**
 * Signs of misuse an IT admin or auditor should look at: a user opening far more patients than
 * usual within an hour, a sign-in outside the clinic's opening hours, and failed sign-ins piling
 * up on an account or a desk. Each raises a `security_alerts` row, an `alert` audit entry and a
 * `security.alert` push; at most one open alert per kind and user (or desk) per hour.
 */
export function createAnomalies(deps: AnomalyDeps) {
  const { db, now, logger } = deps;
  /** Per user: the patients they opened and when (last hour only, loaded from the log on first sight), and until when an alert stands. */
  const opened = new Map<string, { patients: Map<number, number>; alertedUntil: number }>();

  // One open alert per kind and user, or per kind and desk when no account is known.
  const openForUser = db.prepare(`SELECT 1 FROM security_alerts WHERE kind = ? AND user_id = ? AND acknowledged_at IS NULL AND at > ? LIMIT 1`);
  const openForDesk = db.prepare(
    `SELECT 1 FROM security_alerts WHERE kind = ? AND user_id IS NULL AND origin = ? AND acknowledged_at IS NULL AND at > ? LIMIT 1`,
  );
  // The patients come from the entries' own contact ids, found through the (user, time) index: the
  // last hour of one user's entries. Joined through audit_contacts (keyed by patient, not by entry),
  // SQLite scanned the whole side table, some 50 s at a million entries, on a user's first read.
  // The `+` keeps the planner off the (action, time) index, which holds every user's reads.
  const patientsSince = db.prepare(
    `SELECT j.value AS id, max(a.at) AS at FROM audit_log a, json_each(a.contact_ids) j
     WHERE a.user_id = ? AND a.at >= ? AND +a.action = 'read' AND +a.outcome = 'ok' AND j.type = 'integer' GROUP BY j.value`,
  );
  const failuresForUser = db.prepare(`SELECT count(*) FROM audit_log WHERE user_id = ? AND action = 'login_failed' AND at >= ?`).pluck();
  const failuresAtDesk = db.prepare(`SELECT count(*) FROM audit_log WHERE action = 'login_failed' AND origin = ? AND at >= ?`).pluck();
  const stillThere = db.prepare('SELECT 1 FROM security_alerts WHERE id = ?');

  /** Raises the alert unless one is open for this user (or desk) from the last hour. */
  function raise(kind: Kind, who: { userId: string | null; displayName: string | null; role: string; sessionId: string | null; origin: string | null }, count: number | null, why: string): void {
    const at = now();
    if (who.userId !== null ? openForUser.get(kind, who.userId, at - HOUR) : openForDesk.get(kind, who.origin, at - HOUR)) return;
    const alert = insertAlert(db, { kind, at, userId: who.userId, displayName: who.displayName, origin: who.origin, count });
    deps.audit({
      userId: who.userId ?? 'unknown',
      displayName: who.displayName,
      role: who.role,
      sessionId: who.sessionId,
      action: 'alert',
      method: `security.alert.${kind}`,
      contactIds: [],
      origin: who.origin ?? 'core',
      outcome: 'ok',
      reason: why,
    });
    logger.warn({ alertId: alert.id, kind, userId: who.userId, count }, 'security alert');
    // Raised inside the call's transaction: tell the windows only once it is committed.
    setImmediate(() => {
      if (stillThere.get(alert.id)) deps.broadcast('security.alert', alert);
    });
  }

  /** The patients-per-hour limit, read again at most every few seconds (it is checked on every read). */
  let limitCache: { value: number; until: number } | null = null;
  function patientLimit(): number {
    const t = performance.now();
    if (!limitCache || limitCache.until < t) limitCache = { value: deps.settings().patientsPerHourAlert, until: t + 5_000 };
    return limitCache.value;
  }

  function seen(userId: string, at: number) {
    let state = opened.get(userId);
    if (!state) {
      state = { patients: new Map(), alertedUntil: 0 };
      for (const r of patientsSince.all(userId, at - HOUR) as { id: number; at: number }[]) state.patients.set(r.id, r.at);
      opened.set(userId, state);
    }
    return state;
  }

  return {
    /** After every audit entry: counts the patients a user opened (cheap; the log is asked only near the limit). */
    afterRead(record: AuditRecord): void {
      if (record.action !== 'read' || record.outcome !== 'ok' || record.contactIds.length === 0) return;
      const at = now();
      const state = seen(record.userId, at);
      const { patients } = state;
      for (const id of record.contactIds) patients.set(id, at);
      // Told once an hour is enough; the count goes on in memory.
      if (at < state.alertedUntil) return;
      const limit = patientLimit();
      if (patients.size <= limit) return;
      for (const [id, when] of patients) if (when < at - HOUR) patients.delete(id);
      if (patients.size <= limit) return;
      // Near the limit: the log is the authority (another process, a clock change).
      const count = (patientsSince.all(record.userId, at - HOUR) as unknown[]).length;
      if (count <= limit) return;
      raise('many_patients', record, count, `${count} patients opened within an hour (alert above ${limit})`);
      state.alertedUntil = at + HOUR;
    },

    /** A sign-in outside the opening hours (local time of this computer). */
    afterSignIn(session: Session): void {
      const hours = deps.settings().openingHours;
      if (!hours || isOpen(hours, new Date(now()))) return;
      raise(
        'outside_hours',
        { userId: session.userId, displayName: session.displayName, role: session.roles.join('+'), sessionId: session.id, origin: session.origin },
        null,
        `signed in outside the opening hours (${hours.opens}–${hours.closes})`,
      );
    },

    /** After a failed sign-in (already in the log): too many for this account, or at this desk, within an hour. */
    afterSignInFailed(attempt: { userId: string | null; origin: string }): void {
      const at = now();
      const limit = deps.settings().failedSignInsAlert;
      if (attempt.userId) {
        const count = failuresForUser.get(attempt.userId, at - HOUR) as number;
        if (count > limit) {
          const user = getUserById(db, attempt.userId);
          const who = { userId: attempt.userId, displayName: user?.display_name ?? null, role: user ? parseRoles(user.roles).join('+') : '-', sessionId: null, origin: attempt.origin };
          raise('failed_sign_ins', who, count, `${count} failed sign-ins for this account within an hour`);
          return;
        }
      }
      const count = failuresAtDesk.get(attempt.origin, at - HOUR) as number;
      if (count > limit) {
        raise('failed_sign_ins', { userId: null, displayName: null, role: '-', sessionId: null, origin: attempt.origin }, count, `${count} failed sign-ins at this desk within an hour`);
      }
    },
  };
}
export type Anomalies = ReturnType<typeof createAnomalies>;

/** Whether the clinic is open at this local time; hours that close after midnight wrap. */
export function isOpen(hours: NonNullable<SecuritySettings['openingHours']>, when: Date): boolean {
  if (!hours.days.includes(when.getDay())) return false;
  const minutes = when.getHours() * 60 + when.getMinutes();
  const [oh, om] = hours.opens.split(':').map(Number) as [number, number];
  const [ch, cm] = hours.closes.split(':').map(Number) as [number, number];
  const opens = oh * 60 + om;
  const closes = ch * 60 + cm;
  return opens <= closes ? minutes >= opens && minutes < closes : minutes >= opens || minutes < closes;
}
