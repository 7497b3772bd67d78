import type { Logger } from 'pino';
import { BridgeDownSchema, type BridgeCall } from '../../shared/bridge';
import { isRpcEventName, isRpcMethod, type RpcResult } from '../../shared/rpc';

/** The app's own IPC channels (must match electron/preload/index.ts). */
export const INVOKE_CHANNEL = 'clinic-inbox:invoke';
export const EVENT_CHANNEL = 'clinic-inbox:event';

/** What `ipcMain.handle` received, reduced to a method we know and its still-unparsed params (`dispatch` parses them). */
export function parseInvokeArgs(method: unknown, params: unknown): { method: string; params: unknown } | null {
  if (typeof method !== 'string' || !isRpcMethod(method)) return null;
  return { method, params: params === undefined ? {} : params };
}

/** The slice of Electron's `UtilityProcess` the bridge uses; tests pass a fake. */
export interface CoreChild {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  kill(): boolean;
}

export interface CoreBridgeDeps {
  spawn(): CoreChild;
  /** A push event for one window's connection. */
  onEvent(conn: number, event: string, payload: unknown): void;
  logger: Logger;
  /** A call the core has not answered by then fails with UNAVAILABLE instead of hanging the UI. */
  callTimeoutMs?: number;
  /** Delay before the core is started again after it exited unexpectedly. */
  restartDelayMs?: number;
}

export interface CoreBridge {
  /** A call on window `conn`'s connection (each window signs in on its own). */
  invoke(conn: number, method: string, params: unknown): Promise<RpcResult<unknown>>;
  /** The window closed: its connection is closed in the core. */
  disconnect(conn: number): void;
  stop(): void;
}

const unavailable = (message: string): RpcResult<never> => ({ ok: false, error: { code: 'UNAVAILABLE', message } });

/**
 * Main's side of the core utility process: numbers calls, matches answers, forwards push events,
 * and restarts the core if it dies. Results are values, never exceptions across the boundary.
 */
export function createCoreBridge(deps: CoreBridgeDeps): CoreBridge {
  const timeoutMs = deps.callTimeoutMs ?? 30_000;
  const pending = new Map<number, { resolve(r: RpcResult<unknown>): void; timer: ReturnType<typeof setTimeout> }>();
  let nextId = 1;
  let stopped = false;
  let child: CoreChild = start();

  function start(): CoreChild {
    const c = deps.spawn();
    c.on('message', (message) => {
      const frame = BridgeDownSchema.safeParse(message);
      if (!frame.success) {
        deps.logger.warn('ignored a malformed frame from the core process');
        return;
      }
      if (frame.data.type === 'result') {
        const entry = pending.get(frame.data.id);
        if (!entry) return;
        pending.delete(frame.data.id);
        clearTimeout(entry.timer);
        entry.resolve(frame.data.result as RpcResult<unknown>);
      } else if (isRpcEventName(frame.data.event) && frame.data.conn !== undefined) {
        deps.onEvent(frame.data.conn, frame.data.event, frame.data.payload);
      }
    });
    c.on('exit', (code) => {
      for (const [id, entry] of pending) {
        clearTimeout(entry.timer);
        entry.resolve(unavailable('The app core stopped; it is being restarted.'));
        pending.delete(id);
      }
      if (stopped) return;
      deps.logger.error({ code }, 'core process exited; restarting');
      setTimeout(() => {
        if (!stopped) child = start();
      }, deps.restartDelayMs ?? 1_000);
    });
    return c;
  }

  return {
    invoke(conn, method, params) {
      if (stopped) return Promise.resolve(unavailable('The app is shutting down.'));
      const call: BridgeCall = { type: 'call', id: nextId++, conn, method, params };
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(call.id);
          resolve(unavailable('The app core did not answer in time.'));
        }, timeoutMs);
        pending.set(call.id, { resolve, timer });
        child.postMessage(call);
      });
    },
    disconnect(conn) {
      if (!stopped) child.postMessage({ type: 'disconnect', conn });
    },
    stop() {
      stopped = true;
      child.kill();
    },
  };
}
