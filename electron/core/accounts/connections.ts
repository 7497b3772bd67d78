import type { Logger } from 'pino';
import type { RpcEventName, RpcEventPayload, RpcResult } from '../../../shared/rpc';
import type { Dispatch } from '../rpc/dispatch';
import type { Caller, Connection, CoreEventListener, Session } from '../types';
import type { AccountsService } from './service';

type EndReason = RpcEventPayload<'session.ended'>['reason'];

interface Live {
  origin: string;
  sessionId: string | null;
  listeners: Set<CoreEventListener>;
}

/**
 * The core's connections (DESIGN.md "Connections and sessions"). Each starts signed out; a sign-in
 * binds a session; before every call the session is looked up again, so a revoked, expired or
 * disabled one is refused on its next call, and its window is told at once.
 */
export function createConnections(deps: { accounts: AccountsService; dispatch: () => Dispatch; logger: Logger }) {
  const { accounts, logger } = deps;
  const live = new Map<Connection, Live>();

  function emitTo(state: Live, event: RpcEventName, payload: unknown): void {
    for (const listener of state.listeners) {
      try {
        (listener as (e: RpcEventName, p: unknown) => void)(event, payload);
      } catch (err) {
        logger.warn({ event, err: err instanceof Error ? err.name : 'error' }, 'event listener failed');
      }
    }
  }

  function endedFor(sessionId: string, reason: EndReason): void {
    for (const state of live.values()) {
      if (state.sessionId !== sessionId) continue;
      state.sessionId = null;
      emitTo(state, 'session.ended', { reason });
    }
  }

  function connect(origin: string): Connection {
    const state: Live = { origin, sessionId: null, listeners: new Set() };
    const caller = (): Caller => {
      let session: Session | null = null;
      if (state.sessionId) {
        const resolved = accounts.resolveSession(state.sessionId);
        if ('session' in resolved) session = resolved.session;
        else endedFor(state.sessionId, resolved.ended);
      }
      return {
        origin,
        session,
        bind(sessionId) {
          state.sessionId = sessionId;
        },
        unbind(reason) {
          // The window that signed out is told too, so every window returns to sign-in by one event.
          if (state.sessionId) endedFor(state.sessionId, reason);
          state.sessionId = null;
        },
      };
    };
    const connection: Connection = {
      async dispatch(method, params): Promise<RpcResult<unknown>> {
        if (!live.has(connection)) return { ok: false, error: { code: 'UNAUTHENTICATED', message: 'This connection was closed.' } };
        const who = caller();
        if (who.session) accounts.touch(who.session.id);
        return deps.dispatch()(who, method, params);
      },
      on(listener) {
        state.listeners.add(listener);
        return () => void state.listeners.delete(listener);
      },
      close() {
        live.delete(connection);
        state.listeners.clear();
      },
    };
    live.set(connection, state);
    return connection;
  }

  return {
    connect,
    /** A core event (a message arrived, the relay link changed) to every signed-in window. */
    broadcast<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void {
      // Signed-out windows (the sign-in screen) learn only whether the relay is reachable.
      for (const state of live.values()) if (state.sessionId || event === 'relay.stateChanged') emitTo(state, event, payload);
    },
    /** A session ended elsewhere (revoked by an admin, password reset, expired): its windows return to sign-in. */
    sessionEnded: (sessionId: string, reason: EndReason) => endedFor(sessionId, reason),
    /** The session was locked or unlocked in another window of the same session. */
    sessionChanged(sessionId: string): void {
      for (const state of live.values()) if (state.sessionId === sessionId) emitTo(state, 'session.changed', {});
    },
    /** Ends sessions idle past the limit and tells their windows. */
    sweep(): void {
      for (const id of accounts.expireIdle()) endedFor(id, 'expired');
    },
    closeAll(): void {
      for (const [connection] of live) connection.close();
    },
    count: () => live.size,
  };
}
export type Connections = ReturnType<typeof createConnections>;
