import type { Role, RpcEventName, RpcEventPayload, RpcMethod, RpcResult, SessionState } from '../../shared/rpc';

/** A signed-in person at one desk: a row in the encrypted database, bound to a connection. */
export interface Session {
  id: string;
  userId: string;
  username: string;
  displayName: string;
  roles: readonly Role[];
  state: SessionState;
  /** Where the calls come from, for the audit log ("electron", "web-harness 127.0.0.1", "test"). */
  origin: string;
}

/** Who is calling `dispatch`: a connection, signed in or not. */
export interface Caller {
  origin: string;
  session: Session | null;
  /** After a sign-in: this connection now speaks as that session. */
  bind?(sessionId: string): void;
  /** After a sign-out: the connection is signed out again (other windows of the session are told). */
  unbind?(reason: 'signed_out' | 'revoked' | 'expired' | 'password_reset' | 'disabled'): void;
}

export type CoreEventListener = <E extends RpcEventName>(event: E, payload: RpcEventPayload<E>) => void;

/**
 * One window's (or desk's, or test's) way into the core. It starts signed out; signing in binds a
 * session to it, and the session — never the transport — decides what its calls may do.
 */
export interface Connection {
  dispatch(method: RpcMethod | string, params: unknown): Promise<RpcResult<unknown>>;
  /** This connection's push events (patient events only while signed in); returns the unsubscribe function. */
  on(listener: CoreEventListener): () => void;
  /** Detaches the connection; its session stays (a window reload signs in again only if it ended). */
  close(): void;
}

/** The running appliance core, as the Electron shell, the web harness and tests see it. */
export interface Core {
  /** A new signed-out connection from `origin` (which the audit log records). */
  connect(origin: string): Connection;
  /** Stop the relay link and workers, then close the database. */
  close(): Promise<void>;
}
