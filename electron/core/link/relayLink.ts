import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { z } from 'zod';
import { AppErrorSchema, CodedError } from '../../../shared/errors';
import type { EnvelopePlaintext } from '../../../shared/envelope';
import type { Envelope } from '../../../shared/envelope';
import type { RelayFrame, SignedCheckpoint } from '../../../shared/wire';
import {
  APPLIANCE_WS_PATH,
  MAX_DELIVER_FRAME_BYTES,
  RelayFrameSchema,
  ENVELOPE_VERSIONS_HEADER,
  WS_AUTH_HEADERS,
  WS_CLOSE,
  WS_AUTH_MAX_SKEW_MS,
  wsAuthPayload,
} from '../../../shared/wire';
import type { RelayRefusedReason, RelayStatus } from '../../../shared/rpc';
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
   * Store what a batch of deliveries holds, in seq order. It must return only once all of it is
   * committed: the relay deletes each envelope as soon as it sees the ack that follows. Throwing
   * means "not stored"; no ack is sent.
   */
  commit(batch: readonly OpenedDelivery[]): void | Promise<void>;
  onStatus(status: RelayStatus): void;
  logger: Logger;
  now?: () => number;
  /** Reconnect backoff: full jitter between 0 and min(max, initial·2^attempt). */
  backoff?: { initialMs: number; maxMs: number };
  /** A relay that sent nothing (not even a pong to our pings) for this long is considered dead. */
  silenceTimeoutMs?: number;
  /** How often the appliance pings the relay itself, so silence is noticed without waiting for the relay's own heartbeat. */
  pingIntervalMs?: number;
  /**
   * While the relay refuses this appliance (revoked, unknown key), one attempt this often: enough
   * to notice an operator's undo, too rare to hammer the relay. Default five minutes.
   */
  refusedRetryMs?: number;
  /**
   * How long the relay must keep answering "unauthorised" (not "revoked") before the link reads it
   * as a refusal rather than a passing state. The relay also says "unauthorised" for a login made
   * just before it restarted, which heals within its clock window. Default that window.
   */
  unrecognisedAfterMs?: number;
}

/**
 * A delivery ready to commit. `unopenable`: the envelope did not open under this appliance's keys
 * (or its data did not match); it is shelved as it came, still encrypted, and acked like the rest,
 * so a few of them cannot fill the relay's delivery window and stop everything behind them.
 */
export type OpenedDelivery = { seq: number; receivedAt: number } & (
  | { plaintext: EnvelopePlaintext; unopenable?: undefined }
  | { plaintext?: undefined; unopenable: { code: string; envelope: Envelope } }
);

/** Deliveries committed together at most; a backlog drains in transactions of this size. */
const MAX_BATCH = 64;

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
 * opens deliveries as they arrive (in parallel), commits them in seq order — whatever has been
 * opened by the time the previous commit ends goes into the next transaction, so a backlog drains
 * with one disk sync per batch — then acks each, and reconnects with backoff and jitter whenever
 * the link drops. Unacked deliveries come back on the next connection,
 * so a crash anywhere loses nothing; the store's idempotency makes the repeat harmless.
 */
export function createRelayLink(deps: RelayLinkDeps): RelayLink {
  const now = deps.now ?? Date.now;
  const backoff = deps.backoff ?? { initialMs: 500, maxMs: 60_000 };
  // The relay pings every 30 s; our own ping every 8 s answered by a pong keeps a slow but live link
  // up, and 22 s without any frame or pong (about two lost pongs) reports it offline within 30 s.
  const silenceTimeoutMs = deps.silenceTimeoutMs ?? 22_000;
  const pingIntervalMs = deps.pingIntervalMs ?? 8_000;
  const refusedRetryMs = deps.refusedRetryMs ?? 5 * 60_000;
  const unrecognisedAfterMs = deps.unrecognisedAfterMs ?? WS_AUTH_MAX_SKEW_MS;
  const log = deps.logger.child({ part: 'relay-link', applianceId: deps.applianceId });
  const wsUrl = toWebSocketUrl(deps.relayUrl);

  let status: RelayStatus = { state: 'connecting', offlineSince: now(), backlog: null, relayUrl: deps.relayUrl, refusedReason: null };
  let socket: WebSocket | null = null;
  let closed = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let silenceTimer: NodeJS.Timeout | null = null;
  let pingTimer: NodeJS.Timeout | null = null;
  /** When the relay first answered "unauthorised" in the current run of such answers. */
  let unauthorisedSince: number | null = null;
  const waiters = new Set<(frame: RelayFrame) => boolean>();

  function setStatus(next: Partial<RelayStatus>): void {
    status = { ...status, ...next };
    deps.onStatus(status);
  }

  function goOffline(reason: string): void {
    if (status.state === 'refused') {
      // A retry that went nowhere says nothing new: the last word from the relay was a refusal.
      log.info({ reason }, 'relay still unreachable while refused');
      return;
    }
    if (status.state === 'connected' || status.offlineSince === null) {
      setStatus({ state: 'offline', offlineSince: now() });
    } else if (status.state !== 'offline') {
      setStatus({ state: 'offline' });
    }
    log.info({ reason }, 'relay link down');
  }

  function refuse(reason: RelayRefusedReason): void {
    if (status.state !== 'refused' || status.refusedReason !== reason) {
      setStatus({ state: 'refused', refusedReason: reason, offlineSince: status.offlineSince ?? now(), backlog: null });
      log.error({ reason, tenantId: deps.tenantId }, 'the relay refuses this appliance; an IT admin must act');
    }
  }

  /** One attempt after about `ms` (±10 %), outside the backoff: the refused state's slow pulse. */
  function retryAfter(ms: number): void {
    if (closed || reconnectTimer) return;
    reconnectTimer = setTimeout(
      () => {
        reconnectTimer = null;
        connect();
      },
      Math.round(ms * (0.9 + Math.random() * 0.2)),
    );
    reconnectTimer.unref?.();
  }

  /**
   * Reads a refused upgrade. Only the relay's own JSON answer counts as a refusal: a 401 from
   * something else at that address (a proxy asking for its login) is a link problem like any other.
   */
  async function readRefusal(res: IncomingMessage): Promise<RelayRefusedReason | null> {
    const code = res.statusCode ?? 0;
    if (code !== 401) {
      res.resume();
      return null;
    }
    const parsed = RefusalBodySchema.safeParse(parseJson(await readSmallBody(res, 4096, 5_000)));
    if (!parsed.success) return null;
    if (parsed.data.error.code === 'RELAY_REVOKED') return 'revoked';
    if (parsed.data.error.code === 'RELAY_CONFLICT') return 'another_computer';
    if (parsed.data.error.code !== 'RELAY_UNAUTHORIZED') return null;
    // "Unauthorised" covers both an unknown key and a login the relay thinks is stale; its clock tells which.
    const skew = await measureClockSkew(deps.relayUrl, now);
    if (skew !== null && Math.abs(skew) > WS_AUTH_MAX_SKEW_MS - CLOCK_MARGIN_MS) {
      log.warn({ skewSeconds: Math.round(skew / 1000) }, 'this computer\'s clock differs from the relay\'s');
      return 'clock_skew';
    }
    unauthorisedSince ??= now();
    return now() - unauthorisedSince >= unrecognisedAfterMs ? 'not_recognised' : null;
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

  function startPinging(ws: WebSocket): void {
    stopPinging();
    pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, pingIntervalMs);
    pingTimer.unref?.();
  }

  function stopPinging(): void {
    if (pingTimer) clearInterval(pingTimer);
    pingTimer = null;
  }

  function connect(): void {
    if (closed) return;
    if (status.state !== 'offline' && status.state !== 'refused') setStatus({ state: 'connecting' });
    const timestamp = now();
    const nonce = randomBytes(16).toString('base64url');
    const signature = deps.sign(Buffer.from(wsAuthPayload(deps.applianceId, timestamp, nonce), 'utf8'));
    const ws = new WebSocket(wsUrl, {
      headers: {
        [WS_AUTH_HEADERS.applianceId]: deps.applianceId,
        [WS_AUTH_HEADERS.timestamp]: String(timestamp),
        [WS_AUTH_HEADERS.nonce]: nonce,
        [WS_AUTH_HEADERS.signature]: signature.toString('base64url'),
        // This appliance opens envelope v2 (one HPKE context per epoch); v1 keeps opening too.
        [ENVELOPE_VERSIONS_HEADER]: '1,2',
      },
      // The largest frame a webhook the relay accepts can become; below it one big batch would block the queue.
      maxPayload: MAX_DELIVER_FRAME_BYTES,
      handshakeTimeout: 10_000,
    });
    socket = ws;
    // Deliveries of this connection, in the order the relay sent them; opening starts at once.
    const inbox: Arriving[] = [];
    let draining = false;
    /** Set when the relay answered the upgrade with a refusal; read by the close handler. */
    let refusal: RelayRefusedReason | null = null;

    async function drain(): Promise<void> {
      if (draining) return;
      draining = true;
      try {
        while (inbox.length > 0 && socket === ws && ws.readyState === WebSocket.OPEN) {
          await inbox[0]!.opened;
          // One turn of the event loop: deliveries whose opening finished meanwhile join this
          // transaction, so a backlog commits in batches (one disk sync each) rather than one by one.
          await new Promise<void>((resolve) => setImmediate(resolve));
          const batch: Arriving[] = [];
          while (inbox.length > 0 && batch.length < MAX_BATCH && inbox[0]!.settled) batch.push(inbox.shift()!);
          const ready = batch.flatMap((d) => (d.ready ? [d.ready] : []));
          try {
            await deps.commit(ready);
          } catch (err) {
            log.error(
              { seqs: [ready[0]?.seq, ready.at(-1)?.seq], code: err instanceof CodedError ? err.code : 'INTERNAL' },
              'deliveries could not be stored; reconnecting to retry',
            );
            inbox.length = 0;
            ws.close(1011, 'store failed');
            return;
          }
          if (ws.readyState !== WebSocket.OPEN) return; // the acks are lost; the relay delivers again
          for (const d of ready) ws.send(JSON.stringify({ type: 'ack', seq: d.seq }));
        }
      } finally {
        draining = false;
      }
    }

    ws.on('unexpected-response', (_req, res) => {
      const httpStatus = res.statusCode ?? 0;
      log.warn({ httpStatus }, 'relay refused the upgrade');
      void readRefusal(res)
        .catch(() => null)
        .then((reason) => {
          refusal = reason;
          ws.terminate();
        });
    });
    ws.on('open', () => {
      attempt = 0;
      armSilenceTimer(ws);
      startPinging(ws);
    });
    ws.on('ping', () => armSilenceTimer(ws));
    ws.on('pong', () => armSilenceTimer(ws));
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
          unauthorisedSince = null;
          setStatus({ state: 'connected', offlineSince: null, backlog: frame.backlog, refusedReason: null });
          log.info({ queued: frame.backlog.queued }, 'relay link up');
          break;
        case 'backlog':
          setStatus({ backlog: frame.backlog });
          break;
        case 'deliver': {
          const { seq, envelope } = frame;
          const arriving: Arriving = { seq, receivedAt: envelope.receivedAt, settled: false, ready: null, opened: Promise.resolve() };
          arriving.opened = deps.open(seq, envelope).then(
            (plaintext) => {
              arriving.ready = { seq, receivedAt: envelope.receivedAt, plaintext };
              arriving.settled = true;
            },
            (err: unknown) => {
              const code = err instanceof CodedError ? err.code : 'INTERNAL';
              log.error({ seq, code }, 'delivery could not be opened; shelving it encrypted');
              arriving.ready = { seq, receivedAt: envelope.receivedAt, unopenable: { code, envelope } };
              arriving.settled = true;
            },
          );
          inbox.push(arriving);
          void drain();
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
      if (socket === ws || socket === null) stopPinging();
      if (socket === ws) socket = null;
      if (closed) return;
      if (refusal) {
        refuse(refusal);
        // A clock the admin corrects should be noticed soon; a revocation is undone rarely, if ever.
        return retryAfter(refusal === 'clock_skew' ? backoff.maxMs : refusedRetryMs);
      }
      if (code === WS_CLOSE.conflict) {
        // Another computer holds this appliance's keys; the relay holds both off. An admin must act.
        refuse('another_computer');
        return retryAfter(refusedRetryMs);
      }
      if (code === WS_CLOSE.revoked) {
        // Said on a live, authenticated link; one prompt attempt confirms it (the upgrade gets 401) or finds it undone.
        refuse('revoked');
        return scheduleReconnect();
      }
      if (status.state === 'refused') {
        log.info({ code }, 'relay still refuses or is unreachable');
        return retryAfter(status.refusedReason === 'clock_skew' ? backoff.maxMs : refusedRetryMs);
      }
      goOffline(`closed ${code}`);
      // Another instance took over this appliance's link: don't fight it every second.
      scheduleReconnect(code === WS_CLOSE.replaced ? backoff.maxMs : 0);
    });
    ws.on('error', (err) => {
      log.debug({ err: err.message }, 'relay socket error');
    });
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
      stopPinging();
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

const RefusalBodySchema = z.object({ error: AppErrorSchema });
/** The relay's Date header has one-second resolution, and the request takes a moment. */
const CLOCK_MARGIN_MS = 10_000;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** At most `limit` characters of a response body, or what arrived before `timeoutMs`. */
function readSmallBody(res: IncomingMessage, limit: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = (): void => {
      clearTimeout(timer);
      resolve(text);
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, timeoutMs);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > limit) {
        res.destroy();
        done();
      }
    });
    res.on('end', done);
    res.on('error', done);
    res.on('close', done);
  });
}

/** Relay clock minus ours (ms), from the Date header of its health check; null when it cannot be asked. */
export async function measureClockSkew(relayUrl: string, now: () => number): Promise<number | null> {
  try {
    const url = new URL(relayUrl);
    url.pathname = url.pathname.replace(/\/+$/, '') + '/healthz';
    const sentAt = now();
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const receivedAt = now();
    await res.body?.cancel();
    const relayTime = Date.parse(res.headers.get('date') ?? '');
    if (Number.isNaN(relayTime)) return null;
    return relayTime - (sentAt + receivedAt) / 2;
  } catch {
    return null;
  }
}

interface Arriving {
  seq: number;
  receivedAt: number;
  /** Resolves when opening finished, either way. */
  opened: Promise<void>;
  settled: boolean;
  /** Set once settled. */
  ready: OpenedDelivery | null;
}

export function toWebSocketUrl(relayUrl: string): string {
  const url = new URL(relayUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + APPLIANCE_WS_PATH;
  url.search = '';
  url.hash = '';
  return url.toString();
}

