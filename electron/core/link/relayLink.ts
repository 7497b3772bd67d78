import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { CodedError } from '../../../shared/errors';
import type { EnvelopePlaintext } from '../../../shared/envelope';
import type { RelayFrame, SignedCheckpoint } from '../../../shared/wire';
import {
  APPLIANCE_WS_PATH,
  RelayFrameSchema,
  WS_AUTH_HEADERS,
  WS_CLOSE,
  wsAuthPayload,
} from '../../../shared/wire';
import type { RelayStatus } from '../../../shared/rpc';
import type { EnvelopeOpener } from './openEnvelope';

export interface RelayLinkDeps {
  /** The relay's base URL as the operator gave it (`https://relay.example.eu`). */
  relayUrl: string;
  tenantId: string;
  applianceId: string;
  /** Ed25519 signature by the device key. */
  sign(payload: Buffer): Buffer;
  open: EnvelopeOpener;
  /**
   * Store what a delivery holds. It must return only once the data is committed: the relay deletes
   * the envelope as soon as it sees the ack that follows. Throwing means "not stored"; no ack is sent.
   */
  commit(seq: number, plaintext: EnvelopePlaintext, receivedAt: number): void | Promise<void>;
  onStatus(status: RelayStatus): void;
  logger: Logger;
  now?: () => number;
  /** Reconnect backoff: full jitter between 0 and min(max, initial·2^attempt). */
  backoff?: { initialMs: number; maxMs: number };
  /** A relay that sent nothing (not even a ping) for this long is considered dead. */
  silenceTimeoutMs?: number;
}

export interface RelayLink {
  status(): RelayStatus;
  /** Send a signed audit checkpoint; resolves when the relay accepted it. */
  sendCheckpoint(signed: SignedCheckpoint, timeoutMs?: number): Promise<void>;
  /** The latest checkpoint the relay holds for this appliance. */
  latestCheckpoint(timeoutMs?: number): Promise<SignedCheckpoint | null>;
  close(): Promise<void>;
}

/**
 * The appliance's side of the relay connection: authenticates on the upgrade with the device key,
 * opens each delivery, commits it, then acks it — in seq order, one at a time — and reconnects with
 * backoff and jitter whenever the link drops. Unacked deliveries come back on the next connection,
 * so a crash anywhere loses nothing; the store's idempotency makes the repeat harmless.
 */
export function createRelayLink(deps: RelayLinkDeps): RelayLink {
  const now = deps.now ?? Date.now;
  const backoff = deps.backoff ?? { initialMs: 500, maxMs: 60_000 };
  const silenceTimeoutMs = deps.silenceTimeoutMs ?? 75_000;
  const log = deps.logger.child({ part: 'relay-link', applianceId: deps.applianceId });
  const wsUrl = toWebSocketUrl(deps.relayUrl);

  let status: RelayStatus = { state: 'connecting', offlineSince: now(), backlog: null, relayUrl: deps.relayUrl };
  let socket: WebSocket | null = null;
  let closed = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let silenceTimer: NodeJS.Timeout | null = null;
  const waiters = new Set<(frame: RelayFrame) => boolean>();

  function setStatus(next: Partial<RelayStatus>): void {
    status = { ...status, ...next };
    deps.onStatus(status);
  }

  function goOffline(reason: string): void {
    if (status.state === 'connected' || status.offlineSince === null) {
      setStatus({ state: 'offline', offlineSince: now() });
    } else if (status.state !== 'offline') {
      setStatus({ state: 'offline' });
    }
    log.info({ reason }, 'relay link down');
  }

  function scheduleReconnect(minDelayMs = 0): void {
    if (closed || reconnectTimer) return;
    const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 20));
    const delay = Math.max(minDelayMs, Math.floor(Math.random() * ceiling));
    attempt += 1;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
    reconnectTimer.unref?.();
  }

  function armSilenceTimer(ws: WebSocket): void {
    if (silenceTimer) clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      log.warn('relay silent too long; dropping the connection');
      ws.terminate();
    }, silenceTimeoutMs);
    silenceTimer.unref?.();
  }

  function connect(): void {
    if (closed) return;
    if (status.state !== 'offline') setStatus({ state: 'connecting' });
    const timestamp = now();
    const nonce = randomBytes(16).toString('base64url');
    const signature = deps.sign(Buffer.from(wsAuthPayload(deps.applianceId, timestamp, nonce), 'utf8'));
    const ws = new WebSocket(wsUrl, {
      headers: {
        [WS_AUTH_HEADERS.applianceId]: deps.applianceId,
        [WS_AUTH_HEADERS.timestamp]: String(timestamp),
        [WS_AUTH_HEADERS.nonce]: nonce,
        [WS_AUTH_HEADERS.signature]: signature.toString('base64url'),
      },
      maxPayload: 8 * 1024 * 1024,
      handshakeTimeout: 10_000,
    });
    socket = ws;
    // Deliveries are handled strictly one after another, in the order the relay sent them.
    let chain: Promise<void> = Promise.resolve();

    ws.on('unexpected-response', (_req, res) => {
      const code = res.statusCode ?? 0;
      log.warn({ httpStatus: code }, code === 401 ? 'relay refused this appliance (revoked or re-paired?)' : 'relay refused the upgrade');
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      attempt = 0;
      armSilenceTimer(ws);
    });
    ws.on('ping', () => armSilenceTimer(ws));
    ws.on('message', (data, isBinary) => {
      armSilenceTimer(ws);
      if (isBinary) return void ws.close(WS_CLOSE.badFrame, 'binary frames are not part of the protocol');
      let frame: RelayFrame;
      try {
        frame = RelayFrameSchema.parse(JSON.parse(data.toString()));
      } catch {
        log.warn('malformed frame from the relay; reconnecting');
        return void ws.close(WS_CLOSE.badFrame, 'malformed frame');
      }
      for (const waiter of waiters) if (waiter(frame)) waiters.delete(waiter);
      switch (frame.type) {
        case 'welcome':
          if (frame.applianceId !== deps.applianceId || frame.tenantId !== deps.tenantId) {
            log.error('relay welcomed another appliance; closing');
            return void ws.close(WS_CLOSE.badFrame, 'identity mismatch');
          }
          setStatus({ state: 'connected', offlineSince: null, backlog: frame.backlog });
          log.info({ queued: frame.backlog.queued }, 'relay link up');
          break;
        case 'backlog':
          setStatus({ backlog: frame.backlog });
          break;
        case 'deliver': {
          const { seq, envelope } = frame;
          chain = chain.then(() => handleDelivery(ws, seq, envelope));
          break;
        }
        case 'error':
          log.warn({ code: frame.code }, 'relay reported an error');
          break;
        default:
          break;
      }
    });
    ws.on('close', (code) => {
      if (silenceTimer) clearTimeout(silenceTimer);
      if (socket === ws) socket = null;
      if (closed) return;
      goOffline(`closed ${code}`);
      // Another instance took over this appliance's link: don't fight it every second.
      const minDelay = code === WS_CLOSE.replaced || code === WS_CLOSE.revoked ? backoff.maxMs : 0;
      scheduleReconnect(minDelay);
    });
    ws.on('error', (err) => {
      log.debug({ err: err.message }, 'relay socket error');
    });
  }

  async function handleDelivery(ws: WebSocket, seq: number, envelope: Parameters<EnvelopeOpener>[1]): Promise<void> {
    if (ws.readyState !== WebSocket.OPEN) return; // comes again on the next connection
    let plaintext: EnvelopePlaintext;
    try {
      plaintext = await deps.open(seq, envelope);
    } catch (err) {
      // Not acked: it stays at the relay (until its expiry) rather than being thrown away.
      log.error({ seq, code: err instanceof CodedError ? err.code : 'INTERNAL' }, 'delivery could not be opened; left at the relay');
      return;
    }
    try {
      await deps.commit(seq, plaintext, envelope.receivedAt);
    } catch (err) {
      log.error({ seq, code: err instanceof CodedError ? err.code : 'INTERNAL' }, 'delivery could not be stored; reconnecting to retry');
      ws.close(1011, 'store failed');
      return;
    }
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ack', seq }));
  }

  function request<T>(
    frame: object,
    match: (f: RelayFrame) => T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const ws = socket;
      if (!ws || ws.readyState !== WebSocket.OPEN || status.state !== 'connected') {
        reject(new CodedError('UNAVAILABLE', 'The relay is not connected.'));
        return;
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new CodedError('UNAVAILABLE', 'The relay did not answer in time.'));
      }, timeoutMs);
      const waiter = (f: RelayFrame): boolean => {
        if (f.type === 'error') {
          clearTimeout(timer);
          reject(new CodedError(f.code, f.message));
          return true;
        }
        const value = match(f);
        if (value === undefined) return false;
        clearTimeout(timer);
        resolve(value);
        return true;
      };
      waiters.add(waiter);
      ws.send(JSON.stringify(frame));
    });
  }

  connect();

  return {
    status: () => status,
    sendCheckpoint: (signed, timeoutMs = 10_000) =>
      request(
        { type: 'checkpoint', signed },
        (f) => (f.type === 'checkpoint.accepted' && f.seq === signed.checkpoint.seq ? true : undefined),
        timeoutMs,
      ).then(() => undefined),
    latestCheckpoint: (timeoutMs = 10_000) =>
      request({ type: 'checkpoint.get' }, (f) => (f.type === 'checkpoint.latest' ? f.latest : undefined), timeoutMs),
    async close() {
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      if (silenceTimer) clearTimeout(silenceTimer);
      const ws = socket;
      socket = null;
      if (ws && ws.readyState !== WebSocket.CLOSED) {
        await new Promise<void>((resolve) => {
          ws.once('close', () => resolve());
          ws.close(1000, 'appliance shutting down');
          setTimeout(() => {
            ws.terminate();
            resolve();
          }, 2000).unref();
        });
      }
    },
  };
}

export function toWebSocketUrl(relayUrl: string): string {
  const url = new URL(relayUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + APPLIANCE_WS_PATH;
  url.search = '';
  url.hash = '';
  return url.toString();
}

