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
  WS_AUTH_HEADERS,
  WS_AUTH_MAX_SKEW_MS,
  WS_CLOSE,
  wsAuthPayload,
  type RelayFrame,
  type SignedCheckpoint,
} from '../shared/wire';
import type { RelayMetrics } from './metrics';
import { ed25519PublicKeyProblem } from './crypto/keyCheck';
import type { QueueWriter } from './queueWriter';
import { requestTarget } from './requestTarget';
import {
  backlogOf,
  envelopesAfter,
  getAppliance,
  latestCheckpoint,
  revokedAmong,
  saveCheckpoint,
  type ApplianceRow,
  type Db,
} from './store';

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function ed25519PublicFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The `deliver` frame of one queued envelope, exactly as sent (its length is bounded by `MAX_DELIVER_FRAME_BYTES`). */
export function deliverFrame(row: { seq: number; enc: Buffer; ct: Buffer; received_at: number }): RelayFrame {
  return {
    type: 'deliver',
    seq: row.seq,
    envelope: { v: 1, enc: row.enc.toString('base64url'), ct: row.ct.toString('base64url'), receivedAt: row.received_at },
  };
}

const UpgradeHeadersSchema = z.object({
  applianceId: IdSchema,
  timestamp: z.string().regex(/^\d{1,16}$/).transform(Number),
  nonce: Base64UrlSchema.min(16).max(64),
  signature: Base64UrlSchema.length(86),
});

interface Connection {
  ws: WebSocket;
  appliance: ApplianceRow;
  signingKey: KeyObject;
  /** seq → receivedAt of each delivery sent on this socket and not yet acknowledged. */
  inflight: Map<number, number>;
  lastSentSeq: number;
  isAlive: boolean;
  backlogTimer: NodeJS.Timeout | null;
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
}

/** A live link taken over this often within the window means two computers hold one identity. */
const TAKEOVER_LIMIT = 3;
const TAKEOVER_WINDOW_MS = 15 * 60_000;
/** How long both are then refused; an operator is alerted and should revoke and re-pair. */
const CONFLICT_HOLD_MS = 60 * 60_000;

export function createDeliveryHub(deps: {
  db: Db;
  writer: QueueWriter;
  logger: Logger;
  metrics: RelayMetrics;
  now: () => number;
  window: number;
  heartbeatMs: number;
  revocationPollMs: number;
  maxPayload: number;
}): DeliveryHub {
  const { db, logger, metrics } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload, perMessageDeflate: false, clientTracking: false });
  const connections = new Map<string, Connection>();
  // Nonces seen within the skew window. A restart forgets them, so timestamps from before this
  // process started are refused: a captured upgrade cannot be replayed across a restart.
  const nonces = new Map<string, number>();
  /** Per appliance: when its live link was taken over by another connection lately; and, once that repeated, until when it is held off. */
  const takeovers = new Map<string, number[]>();
  const conflictUntil = new Map<string, number>();
  const startedAt = deps.now();
  const checkedSigningKeys = new Set<string>();

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
      if (connections.get(conn.appliance.id) === conn) send(conn, { type: 'backlog', backlog: backlogOf(db, conn.appliance.id) });
    }, 200);
  };

  const pump = (conn: Connection) => {
    if (connections.get(conn.appliance.id) !== conn) return;
    while (conn.inflight.size < deps.window) {
      const rows = envelopesAfter(db, conn.appliance.id, conn.lastSentSeq, deps.window - conn.inflight.size);
      if (rows.length === 0) break;
      for (const row of rows) {
        send(conn, deliverFrame(row));
        conn.inflight.set(row.seq, row.received_at);
        conn.lastSentSeq = row.seq;
      }
    }
  };

  const onAck = (conn: Connection, seq: number) => {
    const receivedAt = conn.inflight.get(seq);
    // An ack for something not in flight on this socket (already acked, or never sent) changes nothing.
    if (receivedAt === undefined) return;
    conn.inflight.delete(seq);
    metrics.deliveryLatency.observe(Math.max(0, deps.now() - receivedAt) / 1000);
    // The window moves at once; the delete joins the writer's next group commit. If it is lost in
    // a crash the envelope is simply delivered again (at-least-once; the appliance is idempotent).
    pump(conn);
    deps.writer.ack(conn.appliance.id, [seq]).then(
      () => sendBacklog(conn),
      (err: Error) => logger.error({ applianceId: conn.appliance.id, err: { message: err.message } }, 'ack delete failed'),
    );
  };

  const handleCheckpoint = (conn: Connection, signed: SignedCheckpoint) => {
    const cp = signed.checkpoint;
    const ok = verify(null, Buffer.from(checkpointPayload(conn.appliance.id, cp)), conn.signingKey, Buffer.from(signed.signature, 'base64url'));
    const fail = (code: ErrorCode, message: string, outcome: string) => {
      metrics.checkpoints.inc({ outcome });
      send(conn, { type: 'error', code, message });
    };
    if (!ok) return fail('CHECKPOINT_BAD_SIGNATURE', 'checkpoint signature does not verify with the enrolled device key', 'bad_signature');
    const held = latestCheckpoint(db, conn.appliance.id);
    if (held && cp.seq < held.seq) {
      return fail('CHECKPOINT_REGRESSION', `checkpoint seq ${cp.seq} is behind the held checkpoint ${held.seq}`, 'regression');
    }
    if (held && cp.seq === held.seq && cp.headHash !== held.head_hash) {
      return fail('CHECKPOINT_CONFLICT', `checkpoint seq ${cp.seq} has a different head hash than the one held`, 'conflict');
    }
    if (!held || cp.seq > held.seq) {
      saveCheckpoint(db, {
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
        return handleCheckpoint(conn, frame.signed);
      case 'checkpoint.get': {
        const held = latestCheckpoint(db, conn.appliance.id);
        send(conn, {
          type: 'checkpoint.latest',
          latest: held ? { checkpoint: { seq: held.seq, headHash: held.head_hash, at: held.at }, signature: held.signature } : null,
        });
        return;
      }
    }
  };

  /**
   * Two computers holding one appliance's keys (a data folder restored elsewhere with the recovery
   * key) take the link from each other, and each one's acks delete messages the other never sees.
   * A live link taken over this often is held off — both ends — and the operator alerted.
   */
  function tookOverAgainAndAgain(applianceId: string): boolean {
    const t = deps.now();
    const times = (takeovers.get(applianceId) ?? []).filter((at) => at > t - TAKEOVER_WINDOW_MS);
    times.push(t);
    takeovers.set(applianceId, times);
    if (times.length < TAKEOVER_LIMIT) return false;
    takeovers.delete(applianceId);
    conflictUntil.set(applianceId, t + CONFLICT_HOLD_MS);
    return true;
  }

  const accept = (ws: WebSocket, appliance: ApplianceRow, signingKey: KeyObject) => {
    const previous = connections.get(appliance.id);
    if (previous && tookOverAgainAndAgain(appliance.id)) {
      connections.delete(appliance.id);
      metrics.connectedAppliances.set(connections.size);
      metrics.applianceConflicts.inc();
      logger.error(
        { applianceId: appliance.id, tenantId: appliance.tenant_id },
        'two connections keep taking over one appliance identity (a copy of its keys?); both held off — revoke it and pair the right computer again',
      );
      previous.ws.close(WS_CLOSE.conflict, 'RELAY_CONFLICT');
      ws.close(WS_CLOSE.conflict, 'RELAY_CONFLICT');
      return;
    }
    if (previous) previous.ws.close(WS_CLOSE.replaced, 'RELAY_REPLACED');
    const conn: Connection = { ws, appliance, signingKey, inflight: new Map(), lastSentSeq: 0, isAlive: true, backlogTimer: null };
    connections.set(appliance.id, conn);
    metrics.connectedAppliances.set(connections.size);
    deps.writer.touch([appliance.id], deps.now());
    logger.info({ applianceId: appliance.id, tenantId: appliance.tenant_id }, 'appliance connected');
    ws.on('pong', () => {
      conn.isAlive = true;
    });
    ws.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
    ws.on('error', () => ws.terminate());
    ws.on('close', (code) => {
      if (conn.backlogTimer) clearTimeout(conn.backlogTimer);
      if (connections.get(appliance.id) === conn) {
        connections.delete(appliance.id);
        metrics.connectedAppliances.set(connections.size);
        deps.writer.touch([appliance.id], deps.now());
      }
      logger.info({ applianceId: appliance.id, code }, 'appliance disconnected');
    });
    send(conn, { type: 'welcome', tenantId: appliance.tenant_id, applianceId: appliance.id, window: deps.window, backlog: backlogOf(db, appliance.id) });
    pump(conn);
  };

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

  const housekeeping = setInterval(() => {
    for (const id of revokedAmong(db, connections.keys())) hub.disconnect(id, WS_CLOSE.revoked, 'RELAY_REVOKED');
    const t = deps.now();
    for (const [k, expiresAt] of nonces) if (expiresAt < t) nonces.delete(k);
    for (const [id, until] of conflictUntil) if (until < t) conflictUntil.delete(id);
    for (const [id, times] of takeovers) if (times.at(-1)! < t - TAKEOVER_WINDOW_MS) takeovers.delete(id);
  }, deps.revocationPollMs);
  housekeeping.unref();

  const hub: DeliveryHub = {
    handleUpgrade(req, socket, head, refuse) {
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
      if (Math.abs(t - timestamp) > WS_AUTH_MAX_SKEW_MS || timestamp < startedAt - 1_000) {
        return deny('stale', 'timestamp outside the allowed window; check the appliance clock');
      }
      const appliance = getAppliance(db, applianceId);
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
      if ((conflictUntil.get(applianceId) ?? 0) > t) {
        return deny('conflict', 'another connection keeps using this appliance identity; held off until an operator checks');
      }
      const nonceKey = `${applianceId}\0${nonce}`;
      if (nonces.has(nonceKey)) return deny('replayed_nonce', 'nonce already used');
      nonces.set(nonceKey, timestamp + WS_AUTH_MAX_SKEW_MS);
      wss.handleUpgrade(req, socket, head, (ws) => accept(ws, appliance, signingKey));
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
    close() {
      clearInterval(heartbeat);
      clearInterval(housekeeping);
      for (const conn of connections.values()) {
        if (conn.backlogTimer) clearTimeout(conn.backlogTimer);
        conn.ws.close(WS_CLOSE.shuttingDown, 'relay shutting down');
        setTimeout(() => conn.ws.terminate(), 1_000).unref();
      }
      connections.clear();
      metrics.connectedAppliances.set(0);
    },
  };
  return hub;
}
