/**
 * Delivery to appliances over one WebSocket each: authentication on the HTTP upgrade (before
 * `handleUpgrade`), `deliver` frames in seq order within a bounded window, acks that delete,
 * backlog reports, one heartbeat timer, replacement of an older socket by a newer one, revocation,
 * and the audit checkpoint witness.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { Base64UrlSchema, IdSchema } from '../shared/encoding';
import type { ErrorCode } from '../shared/errors';
import {
  APPLIANCE_WS_PATH,
  ApplianceFrameSchema,
  checkpointPayload,
  ENVELOPE_VERSIONS_HEADER,
  WS_AUTH_HEADERS,
  WS_AUTH_MAX_SKEW_MS,
  WS_CLOSE,
  wsAuthPayload,
  type RelayFrame,
  type SignedCheckpoint,
} from '../shared/wire';
import type { RelayMetrics } from './metrics';
import { ed25519PublicKeyProblem } from './crypto/keyCheck';
import type { RelayStore } from './relayStore';
import { requestTarget } from './requestTarget';
import type { ApplianceRow, LeasePolicy } from './store';

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function ed25519PublicFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The `deliver` frame of one queued envelope, exactly as sent (its length is bounded by `MAX_DELIVER_FRAME_BYTES`). */
export function deliverFrame(row: { seq: number; enc: Buffer; ct: Buffer; received_at: number; epoch?: string | null }): RelayFrame {
  const enc = row.enc.toString('base64url');
  const ct = row.ct.toString('base64url');
  return {
    type: 'deliver',
    seq: row.seq,
    envelope: row.epoch ? { v: 2, epoch: row.epoch, enc, ct, receivedAt: row.received_at } : { v: 1, enc, ct, receivedAt: row.received_at },
  };
}

const UpgradeHeadersSchema = z.object({
  applianceId: IdSchema,
  timestamp: z.string().regex(/^\d{1,16}$/).transform(Number),
  nonce: Base64UrlSchema.min(16).max(64),
  signature: Base64UrlSchema.length(86),
});

interface Connection {
  /** This connection's name in the lease row (instance and a counter). */
  holder: string;
  ws: WebSocket;
  appliance: ApplianceRow;
  signingKey: KeyObject;
  /** seq → receivedAt of each delivery sent on this socket and not yet acknowledged. */
  inflight: Map<number, number>;
  lastSentSeq: number;
  isAlive: boolean;
  backlogTimer: NodeJS.Timeout | null;
  /** A pump is reading the queue; another request for one runs it again when it ends. */
  pumping: boolean;
  pumpAgain: boolean;
  /** Acks not yet deleted: one delete per burst, not per envelope. */
  pendingAcks: number[];
}

export interface DeliveryHub {
  /** Authenticates and, if all is well, accepts an upgrade on `APPLIANCE_WS_PATH`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, refuse: (reason: string) => void): void;
  /** New envelopes were committed for these appliances. */
  notify(applianceIds: Iterable<string>): void;
  /** Closes an appliance's socket (revoked or replaced by a new enrolment). */
  disconnect(applianceId: string, code: number, reason: string): void;
  connectedCount(): number;
  isConnected(applianceId: string): boolean;
  close(): void;
  /** Resolves when the store work started by this hub (ack deletes, lease releases) has finished. */
  settled(): Promise<void>;
}

/** A live link taken over this often within the window means two computers hold one identity. */
const TAKEOVER_LIMIT = 3;
const TAKEOVER_WINDOW_MS = 15 * 60_000;
/** How long both are then refused; an operator is alerted and should revoke and re-pair. */
const CONFLICT_HOLD_MS = 60 * 60_000;

export function createDeliveryHub(deps: {
  store: RelayStore;
  /** This process's name in connection leases. */
  instanceId: string;
  /** How often to look for envelopes committed by other instances that no notification announced. */
  catchUpMs: number;
  logger: Logger;
  metrics: RelayMetrics;
  now: () => number;
  window: number;
  heartbeatMs: number;
  revocationPollMs: number;
  maxPayload: number;
}): DeliveryHub {
  const { store, logger, metrics } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload, perMessageDeflate: false, clientTracking: false });
  const connections = new Map<string, Connection>();
  const checkedSigningKeys = new Set<string>();
  const leasePolicy: LeasePolicy = {
    takeoverLimit: TAKEOVER_LIMIT,
    windowMs: TAKEOVER_WINDOW_MS,
    holdMs: CONFLICT_HOLD_MS,
    // Renewed every housekeeping round; three missed rounds mean the holding instance is gone.
    staleMs: Math.max(3 * deps.revocationPollMs, 3_000),
  };
  let nextHolder = 1;
  const pendingWork = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    pendingWork.add(p);
    void p.finally(() => pendingWork.delete(p)).catch(() => undefined);
    return p;
  };
  const live = (conn: Connection) => connections.get(conn.appliance.id) === conn;

  const send = (conn: Connection, frame: RelayFrame) => conn.ws.send(JSON.stringify(frame));

  const refuseUpgrade = (socket: Duplex, status: 401 | 404 | 503, code: ErrorCode, message: string) => {
    const body = JSON.stringify({ error: { code, message } });
    const text = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' }[status];
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    socket.destroy();
  };

  const sendBacklog = (conn: Connection) => {
    if (conn.backlogTimer) return;
    // Coalesced: a burst of acks or arrivals produces one report, not one per envelope.
    conn.backlogTimer = setTimeout(() => {
      conn.backlogTimer = null;
      if (!live(conn)) return;
      store.backlogOf(conn.appliance.id).then(
        (backlog) => live(conn) && send(conn, { type: 'backlog', backlog }),
        () => undefined,
      );
    }, 200);
  };

  /** Sends what is queued after the last seq sent, within the window, in seq order. */
  const pump = (conn: Connection): void => {
    if (!live(conn)) return;
    if (conn.pumping) {
      conn.pumpAgain = true;
      return;
    }
    conn.pumping = true;
    void (async () => {
      try {
        do {
          conn.pumpAgain = false;
          while (live(conn) && conn.inflight.size < deps.window) {
            const rows = await store.envelopesAfter(conn.appliance.id, conn.lastSentSeq, deps.window - conn.inflight.size);
            if (rows.length === 0 || !live(conn)) break;
            for (const row of rows) {
              if (row.seq <= conn.lastSentSeq) continue;
              send(conn, deliverFrame(row));
              conn.inflight.set(row.seq, row.received_at);
              conn.lastSentSeq = row.seq;
            }
          }
        } while (conn.pumpAgain && live(conn));
      } catch (err) {
        // The database is unreachable: the catch-up round (or the next ack) pumps again.
        logger.warn({ applianceId: conn.appliance.id, err: { message: (err as Error).message } }, 'reading the queue failed; retrying later');
      } finally {
        conn.pumping = false;
      }
    })();
  };

  const flushAcks = (conn: Connection) => {
    const seqs = conn.pendingAcks;
    conn.pendingAcks = [];
    if (seqs.length === 0) return;
    // If a delete is lost (crash, database down) the envelope is simply delivered again
    // (at-least-once; the appliance is idempotent).
    track(store.ack(conn.appliance.id, seqs)).then(
      () => {
        sendBacklog(conn);
        if (conn.inflight.size < deps.window) pump(conn);
      },
      (err: Error) => {
        // The appliance has these; they must not wait for its next connection to go. Tried again
        // while the socket is open (the delete is idempotent).
        logger.error({ applianceId: conn.appliance.id, err: { message: err.message } }, 'ack delete failed; retrying');
        if (conn.ws.readyState !== conn.ws.OPEN) return;
        conn.pendingAcks.push(...seqs);
        setTimeout(() => flushAcks(conn), 1_000).unref();
      },
    );
  };

  const onAck = (conn: Connection, seq: number) => {
    const receivedAt = conn.inflight.get(seq);
    // An ack for something not in flight on this socket (already acked, or never sent) changes nothing.
    if (receivedAt === undefined) return;
    conn.inflight.delete(seq);
    metrics.deliveryLatency.observe(Math.max(0, deps.now() - receivedAt) / 1000);
    // The window moves at once; the deletes of one burst of acks go in one statement.
    pump(conn);
    if (conn.pendingAcks.push(seq) === 1) setImmediate(() => flushAcks(conn));
  };

  const handleCheckpoint = async (conn: Connection, signed: SignedCheckpoint) => {
    const cp = signed.checkpoint;
    const ok = verify(null, Buffer.from(checkpointPayload(conn.appliance.id, cp)), conn.signingKey, Buffer.from(signed.signature, 'base64url'));
    const fail = (code: ErrorCode, message: string, outcome: string) => {
      metrics.checkpoints.inc({ outcome });
      send(conn, { type: 'error', code, message });
    };
    if (!ok) return fail('CHECKPOINT_BAD_SIGNATURE', 'checkpoint signature does not verify with the enrolled device key', 'bad_signature');
    const held = await store.latestCheckpoint(conn.appliance.id);
    if (held && cp.seq < held.seq) {
      return fail('CHECKPOINT_REGRESSION', `checkpoint seq ${cp.seq} is behind the held checkpoint ${held.seq}`, 'regression');
    }
    if (held && cp.seq === held.seq && cp.headHash !== held.head_hash) {
      return fail('CHECKPOINT_CONFLICT', `checkpoint seq ${cp.seq} has a different head hash than the one held`, 'conflict');
    }
    if (!held || cp.seq > held.seq) {
      await store.saveCheckpoint({
        appliance_id: conn.appliance.id,
        seq: cp.seq,
        head_hash: cp.headHash,
        at: cp.at,
        signature: signed.signature,
        received_at: deps.now(),
      });
    }
    metrics.checkpoints.inc({ outcome: 'accepted' });
    send(conn, { type: 'checkpoint.accepted', seq: cp.seq });
  };

  const onMessage = (conn: Connection, data: RawData, isBinary: boolean) => {
    conn.isAlive = true;
    let frame;
    try {
      if (isBinary) throw new Error('binary frame');
      frame = ApplianceFrameSchema.parse(JSON.parse(data.toString()));
    } catch {
      metrics.badFrames.inc();
      logger.warn({ applianceId: conn.appliance.id }, 'malformed frame from appliance; closing');
      conn.ws.close(WS_CLOSE.badFrame, 'RELAY_BAD_FRAME');
      return;
    }
    switch (frame.type) {
      case 'ack':
        return onAck(conn, frame.seq);
      case 'checkpoint':
        handleCheckpoint(conn, frame.signed).catch(() => send(conn, { type: 'error', code: 'UNAVAILABLE', message: 'the relay could not store the checkpoint; send it again later' }));
        return;
      case 'checkpoint.get': {
        store.latestCheckpoint(conn.appliance.id).then(
          (held) =>
            send(conn, {
              type: 'checkpoint.latest',
              latest: held ? { checkpoint: { seq: held.seq, headHash: held.head_hash, at: held.at }, signature: held.signature } : null,
            }),
          () => send(conn, { type: 'error', code: 'UNAVAILABLE', message: 'the relay could not read the checkpoint; ask again later' }),
        );
        return;
      }
    }
  };

  /**
   * Two computers holding one appliance's keys (a data folder restored elsewhere with the recovery
   * key) take the link from each other, and each one's acks delete messages the other never sees.
   * A live link taken over this often is held off — both ends — and the operator alerted. The
   * lease row in the store decides it, so it holds across instances: the instance that held the
   * old socket closes it when it hears of the move (a notification, or its next lease check).
   */
  const accept = async (ws: WebSocket, appliance: ApplianceRow, signingKey: KeyObject) => {
    const holder = `${deps.instanceId}/${nextHolder++}`;
    let claim;
    try {
      claim = await store.claimLease(appliance.id, holder, deps.instanceId, deps.now(), leasePolicy);
    } catch (err) {
      logger.warn({ applianceId: appliance.id, err: { message: (err as Error).message } }, 'connection lease unavailable; closing the socket');
      ws.close(WS_CLOSE.shuttingDown, 'relay database unavailable');
      return;
    }
    const previous = connections.get(appliance.id);
    if (claim.outcome === 'conflict') {
      if (previous) {
        connections.delete(appliance.id);
        metrics.connectedAppliances.set(connections.size);
        previous.ws.close(WS_CLOSE.conflict, 'RELAY_CONFLICT');
      }
      if (claim.previous) {
        metrics.applianceConflicts.inc();
        logger.error(
          { applianceId: appliance.id, tenantId: appliance.tenant_id },
          'two connections keep taking over one appliance identity (a copy of its keys?); both held off — revoke it and pair the right computer again',
        );
      }
      ws.close(WS_CLOSE.conflict, 'RELAY_CONFLICT');
      return;
    }
    if (previous) {
      connections.delete(appliance.id);
      previous.ws.close(WS_CLOSE.replaced, 'RELAY_REPLACED');
    }
    const conn: Connection = {
      holder,
      ws,
      appliance,
      signingKey,
      inflight: new Map(),
      lastSentSeq: 0,
      isAlive: true,
      backlogTimer: null,
      pumping: false,
      pumpAgain: false,
      pendingAcks: [],
    };
    if (ws.readyState !== ws.OPEN) {
      void track(store.releaseLease(appliance.id, holder)).catch(() => undefined);
      return;
    }
    connections.set(appliance.id, conn);
    metrics.connectedAppliances.set(connections.size);
    store.touch([appliance.id], deps.now());
    logger.info({ applianceId: appliance.id, tenantId: appliance.tenant_id }, 'appliance connected');
    ws.on('pong', () => {
      conn.isAlive = true;
    });
    ws.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
    ws.on('error', () => ws.terminate());
    ws.on('close', (code) => {
      if (conn.backlogTimer) clearTimeout(conn.backlogTimer);
      flushAcks(conn);
      if (live(conn)) {
        connections.delete(appliance.id);
        metrics.connectedAppliances.set(connections.size);
        store.touch([appliance.id], deps.now());
      }
      // Only if it is still ours: a newer connection (here or elsewhere) keeps its lease.
      void track(store.releaseLease(appliance.id, holder)).catch(() => undefined);
      logger.info({ applianceId: appliance.id, code }, 'appliance disconnected');
    });
    let backlog;
    try {
      backlog = await store.backlogOf(appliance.id);
    } catch {
      backlog = { queued: 0, oldestAt: null };
    }
    if (!live(conn)) return;
    send(conn, { type: 'welcome', tenantId: appliance.tenant_id, applianceId: appliance.id, window: deps.window, backlog });
    pump(conn);
  };

  /** Closes local sockets whose lease moved to another connection (on this or another instance). */
  const checkLeases = async (ids: string[]) => {
    if (ids.length === 0) return;
    const holders = await store.leaseHolders(ids);
    for (const id of ids) {
      const conn = connections.get(id);
      if (!conn) continue;
      const holder = holders.get(id);
      if (holder === conn.holder) continue;
      // Moved away (another connection won) or cleared (a conflict hold-off began).
      connections.delete(id);
      metrics.connectedAppliances.set(connections.size);
      conn.ws.close(holder === null ? WS_CLOSE.conflict : WS_CLOSE.replaced, holder === null ? 'RELAY_CONFLICT' : 'RELAY_REPLACED');
      setTimeout(() => conn.ws.terminate(), 2_000).unref();
      logger.info({ applianceId: id }, holder === null ? 'appliance link held off (conflict)' : 'appliance link moved to a newer connection');
    }
  };

  store.onSignal((signal) => {
    if (signal.kind === 'envelopes') {
      const conn = connections.get(signal.applianceId);
      if (conn) {
        pump(conn);
        sendBacklog(conn);
      }
    } else if (signal.kind === 'lease') {
      if (connections.has(signal.applianceId)) checkLeases([signal.applianceId]).catch(() => undefined);
    } else {
      for (const conn of connections.values()) pump(conn);
      checkLeases([...connections.keys()]).catch(() => undefined);
    }
  });

  const heartbeat = setInterval(() => {
    for (const conn of connections.values()) {
      if (!conn.isAlive) {
        logger.info({ applianceId: conn.appliance.id }, 'appliance silent past a heartbeat; terminating');
        conn.ws.terminate();
        continue;
      }
      conn.isAlive = false;
      conn.ws.ping();
    }
  }, deps.heartbeatMs);
  heartbeat.unref();

  let housekeepingBusy = false;
  const housekeeping = setInterval(() => {
    if (housekeepingBusy) return;
    housekeepingBusy = true;
    const ids = [...connections.keys()];
    void (async () => {
      for (const id of await store.revokedAmong(ids)) hub.disconnect(id, WS_CLOSE.revoked, 'RELAY_REVOKED');
      // Keeps this instance's leases live: a lease nobody renews belongs to a dead instance, and a
      // new connection then takes it without counting as a takeover.
      await store.renewLeases(deps.instanceId, deps.now());
      if (store.shared) await checkLeases(ids);
    })()
      .catch((err: Error) => logger.warn({ err: { message: err.message } }, 'housekeeping round failed (database unavailable?)'))
      .finally(() => {
        housekeepingBusy = false;
      });
  }, deps.revocationPollMs);
  housekeeping.unref();

  // Notifications are not durable (a dropped listen connection, a restart): a periodic query finds
  // envelopes committed by another instance for a socket held here.
  let catchUpBusy = false;
  const catchUp = store.shared
    ? setInterval(() => {
        if (catchUpBusy || connections.size === 0) return;
        catchUpBusy = true;
        store
          .queueHeads([...connections.keys()])
          .then((heads) => {
            for (const [id, seq] of heads) {
              const conn = connections.get(id);
              if (conn && seq > conn.lastSentSeq) pump(conn);
            }
          })
          .catch(() => undefined)
          .finally(() => {
            catchUpBusy = false;
          });
      }, deps.catchUpMs)
    : null;
  catchUp?.unref();

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer, refuse: (reason: string) => void): Promise<void> => {
    if (requestTarget(req.url).path !== APPLIANCE_WS_PATH) return refuseUpgrade(socket, 404, 'NOT_FOUND', 'no such endpoint');
    const deny = (reason: string, message: string) => {
      metrics.upgradesRefused.inc({ reason });
      refuse(reason);
      logger.info({ reason }, 'appliance upgrade refused');
      refuseUpgrade(socket, 401, reason === 'revoked' ? 'RELAY_REVOKED' : reason === 'conflict' ? 'RELAY_CONFLICT' : 'RELAY_UNAUTHORIZED', message);
    };
    const headers = UpgradeHeadersSchema.safeParse({
      applianceId: req.headers[WS_AUTH_HEADERS.applianceId],
      timestamp: req.headers[WS_AUTH_HEADERS.timestamp],
      nonce: req.headers[WS_AUTH_HEADERS.nonce],
      signature: req.headers[WS_AUTH_HEADERS.signature],
    });
    if (!headers.success) return deny('missing_auth', 'missing or malformed authentication headers');
    const { applianceId, timestamp, nonce, signature } = headers.data;
    const t = deps.now();
    // Nonces are kept in the store for the whole skew window, so a captured upgrade cannot be
    // replayed after a restart or at another instance.
    if (Math.abs(t - timestamp) > WS_AUTH_MAX_SKEW_MS) {
      return deny('stale', 'timestamp outside the allowed window; check the appliance clock');
    }
    const appliance = await store.getAppliance(applianceId);
    if (!appliance) return deny('unknown_appliance', 'unknown appliance or bad signature');
    // A small-order key would let a forged "universal" signature through; such an appliance is
    // disabled at start, and this holds for one written since by anything else.
    if (!checkedSigningKeys.has(appliance.id)) {
      // Told apart in the metric and the log only; the caller has not proven anything yet.
      if (ed25519PublicKeyProblem(appliance.signing_public_key)) return deny('bad_key', 'unknown appliance or bad signature');
      // An appliance's keys never change (re-pairing makes a new id): checked once per process.
      if (checkedSigningKeys.size > 100_000) checkedSigningKeys.clear();
      checkedSigningKeys.add(appliance.id);
    }
    const signingKey = ed25519PublicFromRaw(appliance.signing_public_key);
    const valid = verify(null, Buffer.from(wsAuthPayload(applianceId, timestamp, nonce)), signingKey, Buffer.from(signature, 'base64url'));
    if (!valid) return deny('bad_signature', 'unknown appliance or bad signature');
    if (appliance.revoked_at !== null) return deny('revoked', 'this appliance was revoked; pair it again');
    // The envelope versions this appliance opens: v2 from now on if it announced it, v1 otherwise.
    const announced = String(req.headers[ENVELOPE_VERSIONS_HEADER] ?? '').split(',').map((v) => v.trim());
    const check = await store.checkUpgrade(applianceId, nonce, timestamp + WS_AUTH_MAX_SKEW_MS, t, announced.includes('2') ? 2 : 1);
    if (!check.fresh) return deny('replayed_nonce', 'nonce already used');
    if (check.conflictUntil > t) {
      return deny('conflict', 'another connection keeps using this appliance identity; held off until an operator checks');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      accept(ws, appliance, signingKey).catch((err: Error) => {
        logger.error({ applianceId, err: { message: err.message } }, 'accepting the appliance socket failed');
        ws.terminate();
      });
    });
  
  };

  const hub: DeliveryHub = {
    handleUpgrade(req, socket, head, refuse) {
      upgrade(req, socket, head, refuse).catch((err: Error) => {
        logger.warn({ err: { message: err.message } }, 'appliance upgrade failed: database unavailable');
        metrics.upgradesRefused.inc({ reason: 'unavailable' });
        refuseUpgrade(socket, 503, 'UNAVAILABLE', 'the relay cannot reach its database; try again shortly');
      });
    },
    notify(applianceIds) {
      for (const id of applianceIds) {
        const conn = connections.get(id);
        if (conn) {
          pump(conn);
          sendBacklog(conn);
        }
      }
    },
    disconnect(applianceId, code, reason) {
      const conn = connections.get(applianceId);
      if (!conn) return;
      connections.delete(applianceId);
      metrics.connectedAppliances.set(connections.size);
      conn.ws.close(code, reason);
      // A peer that ignores the close handshake is cut off anyway.
      setTimeout(() => conn.ws.terminate(), 2_000).unref();
    },
    connectedCount: () => connections.size,
    isConnected: (applianceId) => connections.has(applianceId),
    async settled() {
      while (pendingWork.size > 0) await Promise.allSettled([...pendingWork]);
    },
    close() {
      clearInterval(heartbeat);
      clearInterval(housekeeping);
      if (catchUp) clearInterval(catchUp);
      for (const conn of connections.values()) {
        if (conn.backlogTimer) clearTimeout(conn.backlogTimer);
        flushAcks(conn);
        conn.ws.close(WS_CLOSE.shuttingDown, 'relay shutting down');
        setTimeout(() => conn.ws.terminate(), 1_000).unref();
      }
      connections.clear();
      metrics.connectedAppliances.set(0);
    },
  };
  return hub;
}
