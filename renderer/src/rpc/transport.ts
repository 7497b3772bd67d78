import { BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX, BridgeDownSchema, type BridgeCall } from '../../../shared/bridge';
import { RpcResultSchema, type RpcResult } from '../../../shared/rpc';

/** How the renderer reaches the core: the Electron preload bridge, or the web harness socket. */
export interface Transport {
  readonly kind: 'electron' | 'harness';
  invoke(method: string, params: unknown): Promise<RpcResult<unknown>>;
  /** Push events from the core; returns the unsubscribe function. */
  on(listener: (event: string, payload: unknown) => void): () => void;
  /** Link state between page and core (not the relay): lets the UI say "reconnecting". */
  onLink(listener: (up: boolean) => void): () => void;
}

interface PreloadBridge {
  invoke(method: string, params: unknown): Promise<unknown>;
  on(listener: (event: string, payload: unknown) => void): () => void;
  /** The shell's native dialogs (`shared/dialogs.ts`); absent in the web harness. */
  chooseFolder?(request: { purpose: string; title: string; current?: string }): Promise<unknown>;
  chooseFile?(request: { purpose: string; title: string; current?: string }): Promise<unknown>;
}

declare global {
  interface Window {
    clinicInbox?: PreloadBridge;
  }
}

const unavailable = (message: string): RpcResult<never> => ({ ok: false, error: { code: 'UNAVAILABLE', message } });

function electronTransport(bridge: PreloadBridge): Transport {
  return {
    kind: 'electron',
    async invoke(method, params) {
      const parsed = RpcResultSchema.safeParse(await bridge.invoke(method, params));
      return parsed.success ? (parsed.data as RpcResult<unknown>) : unavailable('The app answered in a form this window does not understand.');
    },
    on: (listener) => bridge.on(listener),
    onLink: () => () => {},
  };
}

/** The harness hands its per-launch token over in the URL fragment; keep it for reloads of this tab only. */
function takeHarnessToken(): string | null {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match?.[1]) {
    sessionStorage.setItem('clinic-inbox.harness-token', match[1]);
    history.replaceState(null, '', location.pathname + location.search);
    return match[1];
  }
  return sessionStorage.getItem('clinic-inbox.harness-token');
}

function harnessTransport(token: string): Transport {
  const listeners = new Set<(event: string, payload: unknown) => void>();
  const linkListeners = new Set<(up: boolean) => void>();
  const pending = new Map<number, (r: RpcResult<unknown>) => void>();
  const queue: BridgeCall[] = [];
  let nextId = 1;
  let socket: WebSocket | null = null;
  let backoff = 250;

  const setLink = (up: boolean): void => linkListeners.forEach((l) => l(up));

  function connect(): void {
    const ws = new WebSocket(`ws://${location.host}/rpc`, [BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX + token]);
    socket = ws;
    ws.onopen = () => {
      if (performance.getEntriesByName('clinic-inbox:link-up').length === 0) performance.mark('clinic-inbox:link-up');
      backoff = 250;
      setLink(true);
      for (const call of queue.splice(0)) ws.send(JSON.stringify(call));
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      let frame;
      try {
        frame = BridgeDownSchema.parse(JSON.parse(m.data));
      } catch {
        return;
      }
      if (frame.type === 'result') {
        pending.get(frame.id)?.(frame.result as RpcResult<unknown>);
        pending.delete(frame.id);
      } else {
        listeners.forEach((l) => l(frame.event, frame.payload));
      }
    };
    ws.onclose = () => {
      socket = null;
      setLink(false);
      // Calls in flight may or may not have run; the caller decides whether to retry.
      for (const [id, resolve] of pending) {
        if (!queue.some((c) => c.id === id)) {
          resolve(unavailable('The connection to the app was interrupted.'));
          pending.delete(id);
        }
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5_000);
    };
  }
  connect();

  return {
    kind: 'harness',
    invoke(method, params) {
      const call: BridgeCall = { type: 'call', id: nextId++, method, params };
      return new Promise((resolve) => {
        pending.set(call.id, resolve);
        if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(call));
        else queue.push(call);
      });
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onLink(listener) {
      linkListeners.add(listener);
      return () => linkListeners.delete(listener);
    },
  };
}

/** Electron's preload when present, else the harness socket; null when neither is available. */
export function pickTransport(): Transport | null {
  if (window.clinicInbox) return electronTransport(window.clinicInbox);
  const token = takeHarnessToken();
  return token ? harnessTransport(token) : null;
}
