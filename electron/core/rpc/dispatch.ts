import type { Logger } from 'pino';
import type { z } from 'zod';
import { CodedError } from '../../../shared/errors';
import type { AuditAction, RpcContract, RpcMethod, RpcOutput, RpcResult } from '../../../shared/rpc';
import { isRpcMethod, methodDef, type MethodDef } from '../../../shared/rpc';
import type { Caller, Session } from '../types';

/** Who an audit entry is about: the caller's session, or the user a sign-in call concerns. */
export interface AuditSubject {
  userId: string;
  displayName: string | null;
  roles: readonly string[];
  sessionId: string | null;
}

/** What a handler may say about the call for the audit log, and how it changes its connection. */
export interface CallContext {
  caller: Caller;
  /** The caller's session; null only in methods a signed-out connection may call. */
  session: Session | null;
  /** The caller's session, for methods that need one (throws UNAUTHENTICATED otherwise). */
  readonly me: Session;
  /** Name the patient (contact) this call concerns, so the audit entry records who was seen. */
  concerns(contactId: number): void;
  /** Why, where the action needs a reason (break the glass); kept in the audit entry. */
  because(reason: string): void;
  /** The entry is about this user rather than the (signed-out) caller: sign-in, first admin. */
  auditAs(subject: AuditSubject): void;
  /** An extra entry written at once, committed even when the call then fails (a failed sign-in). */
  record(entry: Omit<AuditRecord, 'origin' | 'method'> & { method?: string }): void;
  /**
   * Work outside the database (a file, a keychain entry, a push to a window) to do only once the
   * call and its audit entry are committed: if the audit cannot be written, it never happens.
   */
  afterCommit(fn: () => void): void;
  /**
   * An asynchronous handler's closing writes, after its network calls (a booking stored once Google
   * took it): run now in one transaction with the call's audit entry (written as done), so the
   * change and its entry reach the disk in one commit and never one without the other.
   */
  commitWithAudit<T>(write: () => T): T;
}

export type Handler<M extends RpcMethod> = (
  params: z.output<RpcContract[M]['input']>,
  ctx: CallContext,
) => RpcOutput<M> | Promise<RpcOutput<M>>;

export type Handlers = { [M in RpcMethod]: Handler<M> };

export interface AuditRecord {
  userId: string;
  displayName: string | null;
  /** The roles held at that moment, joined with "+" ("receptionist+admin"); "-" when signed out. */
  role: string;
  sessionId: string | null;
  action: AuditAction;
  method: string;
  contactIds: number[];
  origin: string;
  outcome: 'ok' | 'denied' | 'error';
  errorCode?: string;
  reason?: string;
}

export interface DispatchDeps {
  handlers: Handlers;
  /** Appends to the tamper-evident audit log; a failure here fails the call. */
  audit(record: AuditRecord): void;
  /**
   * Runs `fn` in one database transaction (rolled back if it throws). With it, a synchronous
   * handler's writes and its audit entry commit together or not at all: no action without its
   * entry, even across a crash. Without it (a core whose database is not open), they run in turn.
   * `kind` is 'read' for a method whose audit action is a read: its commit may be relaxed (see
   * `audit/readCommits.ts`).
   */
  atomically?: <T>(fn: () => T, kind: 'read' | 'write') => T;
  /** Whether this session holds break-the-glass access to the patient now. */
  hasBreakGlass?(session: Session, contactId: number): boolean;
  logger: Logger;
}

/** Thrown inside the transaction to roll a finished handler back; carries the answer to give instead. */
class Rollback extends Error {
  constructor(readonly result: RpcResult<never>) {
    super('rollback');
  }
}

export type Dispatch = (caller: Caller, method: string, params: unknown) => Promise<RpcResult<unknown>>;

/**
 * The one door into the core. Every transport calls this: it validates the input, checks the
 * caller's role, runs the handler, writes the audit entry where the method touches patient data,
 * validates the output, and wraps everything — errors included — as `{ok, …}`, never a throw.
 */
export function createDispatch(deps: DispatchDeps): Dispatch {
  const { handlers, audit, logger } = deps;

  function tryAudit(record: AuditRecord): boolean {
    try {
      audit(record);
      return true;
    } catch (err) {
      logger.error({ method: record.method, err: errorSummary(err) }, 'audit log write failed');
      return false;
    }
  }

  return async function dispatch(caller, method, params) {
    if (!isRpcMethod(method)) {
      return fail('NOT_FOUND', `Unknown method "${String(method).slice(0, 60)}".`);
    }
    const def = methodDef(method);
    const action = def.audit;
    const { session } = caller;
    const subjectOf = (s: Session | null): AuditSubject =>
      s ? { userId: s.userId, displayName: s.displayName, roles: s.roles, sessionId: s.id } : { userId: 'signed-out', displayName: null, roles: [], sessionId: null };
    let subject = subjectOf(session);
    const entry = (contactIds: number[], outcome: AuditRecord['outcome'], errorCode?: string, reason?: string): AuditRecord => ({
      userId: subject.userId,
      displayName: subject.displayName,
      role: subject.roles.length > 0 ? subject.roles.join('+') : '-',
      sessionId: subject.sessionId,
      action: action!,
      method,
      contactIds: [...new Set(contactIds)],
      origin: caller.origin,
      outcome,
      ...(errorCode ? { errorCode } : {}),
      ...(reason ? { reason } : {}),
    });

    const refusal = accessRefusal(def, session);
    if (refusal) {
      if (action && session) tryAudit(entry([], 'denied', refusal.code));
      if (refusal.code === 'FORBIDDEN') logger.warn({ method, roles: session?.roles, userId: session?.userId }, 'rpc call refused for role');
      return fail(refusal.code, refusal.message(method, session));
    }
    // A break-the-glass method called without the role: every patient it touches needs a grant.
    const viaGlass = !!session && !hasRole(def, session);

    const input = (def.input as z.ZodType).safeParse(params ?? {});
    if (!input.success) {
      // zod issues name paths and expectations, never the values themselves.
      const detail = input.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
        .join('; ');
      return fail('VALIDATION_FAILED', `Invalid input for ${method}: ${detail}`);
    }

    const contactIds: number[] = [];
    const deferred: (() => void)[] = [];
    let reason: string | undefined;
    /** The entry was written with the handler's closing writes (`commitWithAudit`). */
    let audited = false;
    const atomically = deps.atomically ?? (<T>(fn: () => T, _kind: 'read' | 'write'): T => fn());
    const ctx: CallContext = {
      caller,
      session,
      get me(): Session {
        if (!session) throw new CodedError('UNAUTHENTICATED', 'Sign in first.');
        return session;
      },
      concerns(id) {
        // Recorded before the check: a refused attempt on a patient belongs in that patient's trail.
        contactIds.push(id);
        if (viaGlass && !deps.hasBreakGlass?.(session!, id)) {
          throw new CodedError('FORBIDDEN', `Your roles (${session!.roles.join(', ')}) do not include this patient. Break the glass with a reason to open it.`);
        }
      },
      because: (text) => void (reason = text),
      auditAs: (s) => void (subject = s),
      record(extra) {
        tryAudit({ ...extra, method: extra.method ?? method, origin: caller.origin });
      },
      afterCommit: (fn) => void deferred.push(fn),
      commitWithAudit: (write) =>
        atomically(() => {
          const value = write();
          if (action && !audited) {
            if (!tryAudit(entry(contactIds, 'ok', undefined, reason))) throw new Rollback(fail('INTERNAL', `The audit log could not record ${method}, so it was not stored.`));
            audited = true;
          }
          return value;
        }, 'write'),
    };
    const handler = handlers[method] as Handler<RpcMethod>;
    const started = performance.now();

    /** Output check and audit entry of a finished handler; throws `Rollback` to undo it. */
    function settle(value: unknown): RpcResult<unknown> {
      const output = (def.output as z.ZodType).safeParse(value);
      if (!output.success) {
        logger.error({ method, issues: output.error.issues.map((i) => i.path.join('.')) }, 'rpc output failed its schema');
        throw new Rollback(fail('INTERNAL', `The core produced an invalid answer for ${method}. ${audited ? 'The change was stored and audited.' : 'Nothing was changed.'}`));
      }
      if (action && !audited && !tryAudit(entry(contactIds, 'ok', undefined, reason))) {
        throw new Rollback(fail('INTERNAL', `The audit log could not record ${method}, so nothing was done.`));
      }
      return { ok: true, value: output.data };
    }

    try {
      // A synchronous handler runs with its audit entry in one transaction; an asynchronous one
      // (network calls) cannot hold a transaction open and is settled when it finishes.
      let pending: Promise<unknown> | null = null;
      let result = atomically(() => {
        const value = handler(input.data as never, ctx);
        if (value instanceof Promise) {
          pending = value;
          return null;
        }
        return settle(value);
      }, action === 'read' ? 'read' : 'write');
      if (pending) result = settle(await pending);
      for (const fn of deferred) fn();
      logger.debug({ method, ms: Math.round(performance.now() - started) }, 'rpc');
      return result!;
    } catch (err) {
      if (err instanceof Rollback) return err.result;
      if (err instanceof CodedError) {
        if (action) tryAudit(entry(contactIds, err.code === 'FORBIDDEN' ? 'denied' : 'error', err.code, reason));
        return fail(err.code, err.message, err.details);
      }
      logger.error({ method, err: errorSummary(err) }, 'rpc handler failed');
      if (action) tryAudit(entry(contactIds, 'error', 'INTERNAL', reason));
      return fail('INTERNAL', `Something went wrong in ${method}. The error was logged.`);
    }
  };
}

function hasRole(def: MethodDef, session: Session): boolean {
  return session.roles.some((r) => def.roles.includes(r));
}

interface Refusal {
  code: 'UNAUTHENTICATED' | 'SESSION_LOCKED' | 'PASSWORD_CHANGE_REQUIRED' | 'FORBIDDEN';
  message(method: string, session: Session | null): string;
}

/** The contract's access rule for this caller, before anything else runs. */
function accessRefusal(def: MethodDef, session: Session | null): Refusal | null {
  if (!session) {
    return def.signedOut ? null : { code: 'UNAUTHENTICATED', message: () => 'Sign in first.' };
  }
  if (session.state === 'locked' && !def.whileLocked && !def.signedOut) {
    return { code: 'SESSION_LOCKED', message: () => 'The desk is locked. Unlock it with your PIN or password.' };
  }
  if (session.state === 'password_change' && !def.whilePasswordChange && !def.signedOut) {
    return { code: 'PASSWORD_CHANGE_REQUIRED', message: () => 'Set a new password first.' };
  }
  if (hasRole(def, session) || def.breakGlass) return null;
  return { code: 'FORBIDDEN', message: (m, s) => `Your roles (${s!.roles.join(', ')}) may not use ${m}.` };
}

function fail(code: CodedError['code'], message: string, details?: CodedError['details']): RpcResult<never> {
  return { ok: false, error: { code, message, ...(details ? { details } : {}) } };
}

/** Only the class and stack of an unexpected error: its message may quote data. */
export function errorSummary(err: unknown): { type: string; stack?: string } {
  if (err instanceof Error) {
    const frames = err.stack?.split('\n').slice(1, 6).join('\n');
    return { type: err.name, ...(frames ? { stack: frames } : {}) };
  }
  return { type: typeof err };
}
