import type { Logger } from 'pino';
import type { z } from 'zod';
import { CodedError } from '../../../shared/errors';
import type { AuditAction, RpcContract, RpcMethod, RpcOutput, RpcResult } from '../../../shared/rpc';
import { isRpcMethod, rpcContract } from '../../../shared/rpc';
import type { Session } from '../types';

/** What a handler may say about the call for the audit log. */
export interface CallContext {
  session: Session;
  /** Name the patient (contact) this call concerns, so the audit entry records who was seen. */
  concerns(contactId: number): void;
  /**
   * Work outside the database (a file, a keychain entry) to do only once the call and its audit
   * entry are committed: if the audit cannot be written, it never happens.
   */
  afterCommit(fn: () => void): void;
}

export type Handler<M extends RpcMethod> = (
  params: z.output<RpcContract[M]['input']>,
  ctx: CallContext,
) => RpcOutput<M> | Promise<RpcOutput<M>>;

export type Handlers = { [M in RpcMethod]: Handler<M> };

export interface AuditRecord {
  userId: string;
  role: string;
  action: AuditAction;
  method: string;
  contactIds: number[];
  origin: string;
  outcome: 'ok' | 'denied' | 'error';
  errorCode?: string;
}

export interface DispatchDeps {
  handlers: Handlers;
  /** Appends to the tamper-evident audit log; a failure here fails the call. */
  audit(record: AuditRecord): void;
  /**
   * Runs `fn` in one database transaction (rolled back if it throws). With it, a synchronous
   * handler's writes and its audit entry commit together or not at all: no action without its
   * entry, even across a crash. Without it (a core whose database is not open), they run in turn.
   */
  atomically?: <T>(fn: () => T) => T;
  logger: Logger;
}

/** Thrown inside the transaction to roll a finished handler back; carries the answer to give instead. */
class Rollback extends Error {
  constructor(readonly result: RpcResult<never>) {
    super('rollback');
  }
}

export type Dispatch = (session: Session, method: string, params: unknown) => Promise<RpcResult<unknown>>;

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

  return async function dispatch(session, method, params) {
    if (!isRpcMethod(method)) {
      return fail('NOT_FOUND', `Unknown method "${String(method).slice(0, 60)}".`);
    }
    const def = rpcContract[method];
    const action = 'audit' in def ? (def.audit as AuditAction) : undefined;

    if (!(def.roles as readonly string[]).includes(session.role)) {
      if (action) tryAudit(entry(session, method, action, [], 'denied', 'FORBIDDEN'));
      logger.warn({ method, role: session.role, userId: session.userId }, 'rpc call refused for role');
      return fail('FORBIDDEN', `Your role (${session.role}) may not use ${method}.`);
    }

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
    const ctx: CallContext = { session, concerns: (id) => void contactIds.push(id), afterCommit: (fn) => void deferred.push(fn) };
    const handler = handlers[method] as Handler<RpcMethod>;
    const atomically = deps.atomically ?? (<T>(fn: () => T): T => fn());
    const started = performance.now();

    /** Output check and audit entry of a finished handler; throws `Rollback` to undo it. */
    function settle(value: unknown): RpcResult<unknown> {
      const output = (def.output as z.ZodType).safeParse(value);
      if (!output.success) {
        logger.error({ method, issues: output.error.issues.map((i) => i.path.join('.')) }, 'rpc output failed its schema');
        throw new Rollback(fail('INTERNAL', `The core produced an invalid answer for ${method}. Nothing was changed.`));
      }
      if (action && !tryAudit(entry(session, method, action, contactIds, 'ok'))) {
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
      });
      if (pending) result = settle(await pending);
      for (const fn of deferred) fn();
      logger.debug({ method, ms: Math.round(performance.now() - started) }, 'rpc');
      return result!;
    } catch (err) {
      if (err instanceof Rollback) return err.result;
      if (err instanceof CodedError) {
        if (action) tryAudit(entry(session, method, action, contactIds, 'error', err.code));
        return fail(err.code, err.message);
      }
      logger.error({ method, err: errorSummary(err) }, 'rpc handler failed');
      if (action) tryAudit(entry(session, method, action, contactIds, 'error', 'INTERNAL'));
      return fail('INTERNAL', `Something went wrong in ${method}. The error was logged.`);
    }
  };
}

function entry(
  session: Session,
  method: string,
  action: AuditAction,
  contactIds: number[],
  outcome: AuditRecord['outcome'],
  errorCode?: string,
): AuditRecord {
  return {
    userId: session.userId,
    role: session.role,
    action,
    method,
    contactIds: [...new Set(contactIds)],
    origin: session.origin,
    outcome,
    ...(errorCode ? { errorCode } : {}),
  };
}

function fail(code: CodedError['code'], message: string): RpcResult<never> {
  return { ok: false, error: { code, message } };
}

/** Only the class and stack of an unexpected error: its message may quote data. */
export function errorSummary(err: unknown): { type: string; stack?: string } {
  if (err instanceof Error) {
    const frames = err.stack?.split('\n').slice(1, 6).join('\n');
    return { type: err.name, ...(frames ? { stack: frames } : {}) };
  }
  return { type: typeof err };
}
