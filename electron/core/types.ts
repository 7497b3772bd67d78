import type { Role, RpcEventName, RpcEventPayload, RpcMethod, RpcResult } from '../../shared/rpc';

/** Who is calling: every transport resolves its caller to one of these before `dispatch`. */
export interface Session {
  userId: string;
  role: Role;
  displayName: string;
  /** Where the call came from, for the audit log ("electron", "web-harness 127.0.0.1", "test"). */
  origin: string;
}

export type CoreEventListener = <E extends RpcEventName>(event: E, payload: RpcEventPayload<E>) => void;

/** The running appliance core, as the Electron shell, the web harness and tests see it. */
export interface Core {
  /** The single entry for every RPC call: validates, checks the role, audits, runs, validates the output. */
  dispatch(session: Session, method: RpcMethod | string, params: unknown): Promise<RpcResult<unknown>>;
  /** Subscribe to push events; returns the unsubscribe function. */
  on(listener: CoreEventListener): () => void;
  /** Stop the relay link and workers, then close the database. */
  close(): Promise<void>;
}
