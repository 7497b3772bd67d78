/**
 * `createRelayServer(deps)`: the relay's HTTP(S) server — Meta's webhook, enrolment, health,
 * metrics — and the appliance WebSocket on the same port. Nothing runs until `listen()`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ENROL_PATH, EnrolRequestSchema, type EnrolResponse } from '../shared/enrolment';
import type { ErrorCode } from '../shared/errors';
import { MAX_ENVELOPE_PLAINTEXT_BYTES, WS_CLOSE } from '../shared/wire';
import type { RelayConfig } from './config';
import { x25519KeyPairFromPrivate, x25519PrivateFromRaw } from './crypto/hpke';
import { applianceKeyProblem } from './crypto/keyCheck';
import { createDeliveryHub } from './delivery';
import { MAX_NESTING_DEPTH, nestingDepthExceeds, parseWebhook, phoneNumberIdsOf, routeWebhook, verifyMetaSignature } from './intake';
import { createMetrics, type RejectReason } from './metrics';
import { createRateLimiter } from './rateLimit';
import { openRelayStore, RoutingChanged, type RelayStore, type Routing } from './relayStore';
import { requestTarget } from './requestTarget';

export const WEBHOOK_PATH = '/webhooks/whatsapp';

/** Meta keeps its own retry schedule; the header says the same to anyone else reading the 503. */
const NO_APPLIANCE_RETRY_AFTER_S = 300;

const OK_BODY = '{"ok":true}';
const OK_HEADERS = ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(OK_BODY))];

export interface RelayServerDeps {
  config: RelayConfig;
  logger: Logger;
  /** `sqlite:PATH` or `postgres://…`; the server opens (and closes) its store. */
  databaseUrl: string;
  /** A name for this instance in connection leases (host and pid by default). */
  instanceId?: string;
  clock?: { now(): number };
  /** Called if the store cannot work any more (the SQLite writer thread died). */
  onFatal?: (err: Error) => void;
}

export interface RelayServer {
  listen(): Promise<AddressInfo>;
  /** Where the metrics listener is bound, once listening (null when `RELAY_METRICS_LISTEN=off`). */
  metricsAddress(): AddressInfo | null;
  /** Stops accepting, finishes in-flight commits, closes sockets and the database. */
  close(): Promise<void>;
  address(): AddressInfo | null;
}

class BodyTooLarge extends Error {
  constructor(readonly declared: boolean) {
    super('body too large');
  }
}
class OverBudget extends Error {}

/**
 * The memory all request bodies may hold together. Each request's claim grows as its body arrives
 * (or at once to a declared Content-Length) and is given back once, when its response is done; a
 * claim that would pass the budget is refused, so many slow uploads cannot exhaust memory.
 */
export interface BodyBudget {
  used(): number;
  claim(res: ServerResponse): BodyClaim;
}

export interface BodyClaim {
  /** Makes the claim at least `bytes`; false (nothing changes) when the budget cannot cover it. */
  cover(bytes: number): boolean;
  release(): void;
}

export function createBodyBudget(limit: number): BodyBudget {
  let used = 0;
  return {
    used: () => used,
    claim(res) {
      let held = 0;
      let released = false;
      const claim: BodyClaim = {
        cover(bytes) {
          if (released) return false;
          if (bytes <= held) return true;
          if (used - held + bytes > limit) return false;
          used += bytes - held;
          held = bytes;
          return true;
        },
        release() {
          if (released) return;
          released = true;
          used -= held;
          held = 0;
        },
      };
      res.once('close', () => claim.release());
      return claim;
    },
  };
}

const EMPTY = Buffer.alloc(0);

function readBody(req: IncomingMessage, limit: number, claim: BodyClaim): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return reject(new BodyTooLarge(true));
    // Claimed before a byte is read: a slow upload holds its share from the start.
    if (Number.isFinite(declared) && !claim.cover(declared)) return reject(new OverBudget());
    // Node hands over each body chunk in a buffer of its own, exactly its size: a body that arrives
    // in one chunk (nearly every webhook, a few KB in one read) is used as it is, without a chunk
    // list or a second copy.
    let first: Buffer | null = null;
    let chunks: Buffer[] | null = null;
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit || !claim.cover(size)) {
        req.off('data', onData);
        reject(size > limit ? new BodyTooLarge(false) : new OverBudget());
        return;
      }
      if (first === null) first = chunk;
      else (chunks ??= [first]).push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks ? Buffer.concat(chunks, size) : (first ?? EMPTY)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

export async function createRelayServer(deps: RelayServerDeps): Promise<RelayServer> {
  const { config, logger } = deps;
  // Filled in below; the store reports commit batches to the metrics, which need the store too.
  let onBatch: (size: number, seconds: number) => void = () => undefined;
  const store: RelayStore = await openRelayStore(deps.databaseUrl, {
    sealing: { relayPrivateKey: config.relayPrivateKey, dedupKey: config.dedupKey },
    poolSize: config.databasePoolSize,
    statementTimeoutMs: config.databaseTimeoutMs,
    onBatch: (size, seconds) => onBatch(size, seconds),
    onFatal: (err) => {
      logger.fatal({ err: { message: err.message } }, 'queue writer thread died; webhooks now get 503');
      deps.onFatal?.(err);
    },
  });
  const now = () => (deps.clock ? deps.clock.now() : Date.now());
  const verifyToken = Buffer.from(config.verifyToken);
  const metricsToken = config.metricsToken ? Buffer.from(config.metricsToken) : null;
  const relayKeyPair = x25519KeyPairFromPrivate(x25519PrivateFromRaw(config.relayPrivateKey));
  const budget = createBodyBudget(config.maxInflightBodyBytes);
  let databaseUp = true;
  // Built before the hub exists; read at scrape time only.
  let isConnected: (applianceId: string) => boolean = () => false;
  const metrics = createMetrics(
    {
      queue: () => store.queueByTenant(),
      appliances: async () =>
        (await store.activeAppliances()).map((a) => ({ tenant: a.tenant_id, connected: isConnected(a.id), lastSeenAt: a.last_seen_at ?? a.enrolled_at })),
      databaseUp: () => databaseUp,
      inflightBodyBytes: budget.used,
    },
    now,
  );
  const limiter = createRateLimiter({ ratePerMinute: config.unsignedRatePerMinute, burst: config.unsignedBurst, now });
  let shuttingDown = false;

  onBatch = (size, seconds) => {
    if (size > 0) metrics.commitBatchSize.observe(size);
    metrics.commitSeconds.observe(seconds);
  };
  const hub = createDeliveryHub({
    store,
    instanceId: deps.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    catchUpMs: config.catchUpMs,
    logger,
    metrics,
    now,
    window: config.deliveryWindow,
    heartbeatMs: config.heartbeatMs,
    revocationPollMs: config.revocationPollMs,
    maxPayload: config.wsMaxPayloadBytes,
  });
  isConnected = hub.isConnected;

  const clientIp = (req: IncomingMessage): string => {
    if (config.trustProxy) {
      const fwd = req.headers['x-forwarded-for'];
      const last = (Array.isArray(fwd) ? fwd.join(',') : (fwd ?? '')).split(',').pop()?.trim();
      if (last) return last;
    }
    return req.socket.remoteAddress ?? 'unknown';
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  /** Meta's 200, answered for nearly every webhook: its bytes and headers built once. */
  const sendOk = (res: ServerResponse) => {
    res.writeHead(200, OK_HEADERS);
    res.end(OK_BODY);
  };
  const sendError = (res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) =>
    sendJson(res, status, { error: { code, message } }, headers);

  const reject = (res: ServerResponse, status: number, reason: RejectReason, code: ErrorCode, message: string) => {
    metrics.webhooksRejected.inc({ reason });
    // After a 413 the connection is closed rather than reused.
    sendError(res, status, code, message, status === 413 ? { connection: 'close' } : {});
  };

  /** Over the in-flight body budget: refused before (more of) the body is read; Meta retries a 503. */
  const refuseBusy = (req: IncomingMessage, res: ServerResponse, reason: RejectReason | null) => {
    if (reason) metrics.webhooksRejected.inc({ reason });
    logger.warn({ inflightBodyBytes: budget.used() }, 'request refused: request bodies in memory at the budget');
    req.pause();
    sendError(res, 503, 'UNAVAILABLE', 'relay busy; retry later', { 'retry-after': '5', connection: 'close' });
  };

  const handleVerify = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    const mode = query.get('hub.mode');
    const token = query.get('hub.verify_token');
    const challenge = query.get('hub.challenge');
    const given = Buffer.from(token ?? '');
    const tokenOk = token !== null && given.length === verifyToken.length && timingSafeEqual(given, verifyToken);
    if (mode === 'subscribe' && tokenOk && challenge !== null) {
      const body = Buffer.from(challenge, 'utf8');
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
      res.end(body);
      logger.info('webhook verification handshake answered');
      return;
    }
    limiter.take(clientIp(req));
    logger.warn('webhook verification refused');
    sendError(res, 403, 'RELAY_UNAUTHORIZED', 'verification refused');
  };

  const handleWebhook = async (req: IncomingMessage, res: ServerResponse) => {
    const receivedAt = now();
    const ip = clientIp(req);
    const signature = req.headers['x-hub-signature-256'];
    const header = Array.isArray(signature) ? signature[0] : signature;
    const claim = budget.claim(res);
    let raw: Buffer;
    try {
      raw = await readBody(req, config.bodyLimitBytes, claim);
    } catch (err) {
      if (err instanceof OverBudget) return refuseBusy(req, res, 'busy');
      if (err instanceof BodyTooLarge) {
        // The discarded rest is never held.
        claim.release();
        limiter.take(ip);
        if (err.declared) {
          // The declared length already says no: answer now, not after the client has sent (or
          // failed to send) all of it; the connection closes once the answer is out.
          req.on('data', () => undefined);
          return reject(res, 413, 'too_large', 'BAD_REQUEST', `body larger than ${config.bodyLimitBytes} bytes`);
        }
        // Discard the rest before answering, so the client reads a 413 instead of a broken pipe;
        // past a hard bound (or the request timeout) the connection is simply cut.
        let discarded = 0;
        req.on('data', (c: Buffer) => {
          discarded += c.length;
          if (discarded > 4 * config.bodyLimitBytes) req.socket.destroy();
        });
        req.resume();
        req.once('end', () => reject(res, 413, 'too_large', 'BAD_REQUEST', `body larger than ${config.bodyLimitBytes} bytes`));
        return;
      }
      return;
    }
    if (!verifyMetaSignature(config.appSecrets, raw, header)) {
      // A signature header buys a body read, not immunity: an address that keeps failing is slowed.
      if (!limiter.allowed(ip)) {
        metrics.webhooksRejected.inc({ reason: 'rate_limited' });
        return sendError(res, 429, 'RATE_LIMITED', 'too many unauthenticated requests; slow down', { 'retry-after': '60', connection: 'close' });
      }
      limiter.take(ip);
      logger.warn({ bytes: raw.length }, 'webhook refused: bad or missing signature');
      return reject(res, 401, header ? 'bad_signature' : 'missing_signature', 'RELAY_UNAUTHORIZED', 'bad or missing X-Hub-Signature-256');
    }
    if (nestingDepthExceeds(raw)) {
      // Signed, but parsing or walking it would recurse past the stack; a retry would not change it.
      logger.warn({ bytes: raw.length }, 'webhook refused: nested too deep');
      return reject(res, 400, 'too_deep', 'BAD_REQUEST', `body nests deeper than ${MAX_NESTING_DEPTH} levels`);
    }
    let body = parseWebhook(raw);
    if (!body) {
      // Signed by Meta but not a webhook we can route: a retry would not change it, so 400.
      return reject(res, 400, 'bad_json', 'BAD_REQUEST', 'body is not a WhatsApp webhook');
    }
    const phoneNumberIds = phoneNumberIdsOf(body);
    // A number an operator changes between routing and commit makes the commit refuse the parts
    // (nothing written); they are routed again. Three changes in a row are answered 503.
    for (let attempt = 1; ; attempt += 1) {
      let routing: Routing;
      try {
        routing = await store.route(phoneNumberIds);
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'routing lookup failed; answering 503 so Meta retries');
        return reject(res, 503, 'commit_failed', 'UNAVAILABLE', 'could not store the webhook; retry later');
      }
      // The parsed tree is dropped before the commit waits for the disk (a retry parses again):
      // held by every webhook in flight, it was much of what each young collection had to copy.
      const { parts, unknownPhoneNumber, noPhoneNumber } = routeWebhook(raw, header!, body ?? parseWebhook(raw)!, (p) => routing.tenants.get(p));
      body = null;
      const oversized = parts.filter((p) => p.plaintext.length > MAX_ENVELOPE_PLAINTEXT_BYTES);
      if (oversized.length > 0) {
        // Only a re-serialisation that grows (exponent numbers) gets here: queueing it would block the
        // clinic's queue behind a frame its appliance refuses, so nothing of this body is kept.
        logger.error(
          { tenantIds: oversized.map((p) => p.tenantId), plaintextBytes: oversized.map((p) => p.plaintext.length), bytes: raw.length },
          'webhook refused: a clinic\'s part would exceed the largest frame appliances accept',
        );
        return reject(res, 413, 'undeliverable', 'BAD_REQUEST', `a clinic's part of this body would exceed ${MAX_ENVELOPE_PLAINTEXT_BYTES} bytes sealed`);
      }
      const countDropped = () => {
        if (unknownPhoneNumber) metrics.unknownPhoneNumbers.inc(unknownPhoneNumber);
        if (noPhoneNumber) metrics.changesDropped.inc({ reason: 'no_phone_number' }, noPhoneNumber);
      };
      if (parts.length === 0) {
        countDropped();
        metrics.webhooksAccepted.inc({ outcome: 'unrouted' });
        logger.info({ unknownPhoneNumber, noPhoneNumber }, 'webhook accepted, nothing routed');
        return sendOk(res);
      }
      try {
        const outcomes = await store.commit(parts, receivedAt, routing.version);
        countDropped();
        hub.notify(outcomes.flatMap((o) => (o.outcome === 'queued' ? [o.applianceId] : [])));
        let queued = 0;
        const waiting: string[] = [];
        const unsealable: { tenantId: string; applianceId: string }[] = [];
        for (const o of outcomes) {
          if (o.outcome === 'queued') {
            queued += 1;
            metrics.envelopesQueued.inc({ tenant: o.tenantId });
          } else if (o.outcome === 'duplicate') metrics.duplicates.inc({ tenant: o.tenantId });
          else if (o.outcome === 'unsealable') unsealable.push({ tenantId: o.tenantId, applianceId: o.applianceId });
          else waiting.push(o.tenantId);
        }
        if (unsealable.length > 0) {
          // The other clinics' parts are committed; this one waits for Meta's retry, which the
          // dedup reduces to what is missing. Only re-pairing that clinic makes it deliverable.
          metrics.webhooksDeferred.inc({ reason: 'unsealable' });
          if (waiting.length > 0) metrics.webhooksDeferred.inc({ reason: 'no_appliance' });
          logger.error(
            { unsealable, noApplianceTenantIds: waiting, queuedParts: queued },
            "webhook deferred: a clinic's appliance key cannot be sealed to; revoke it and pair the clinic again; 503 so Meta retries",
          );
          return sendError(res, 503, 'UNAVAILABLE', "a clinic in this webhook cannot be sealed to; retry later", { 'retry-after': String(NO_APPLIANCE_RETRY_AFTER_S) });
        }
        if (waiting.length > 0) {
          // A known clinic without an active appliance (not enrolled yet, or revoked and not yet
          // re-paired): nothing can be sealed for it, and a 200 would make Meta forget the messages.
          // 503 makes Meta retry (for up to 7 days); the other clinics' parts are committed now and
          // the keyed dedup recognises them in the retry, so only what is missing gets queued.
          metrics.webhooksDeferred.inc({ reason: 'no_appliance' });
          logger.warn({ tenantIds: waiting, queuedParts: queued }, 'webhook deferred: clinic has no active appliance; 503 so Meta retries');
          return sendError(res, 503, 'UNAVAILABLE', 'a clinic in this webhook has no active appliance; retry later', { 'retry-after': String(NO_APPLIANCE_RETRY_AFTER_S) });
        }
        metrics.webhooksAccepted.inc({ outcome: queued > 0 ? 'queued' : 'duplicate' });
        logger.debug({ outcomes, bytes: raw.length }, 'webhook committed');
        return sendOk(res);
      } catch (err) {
        if (err instanceof RoutingChanged && attempt < 3) continue;
        logger.error({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'webhook commit failed; answering 503 so Meta retries');
        return reject(res, 503, 'commit_failed', 'UNAVAILABLE', 'could not store the webhook; retry later');
      }
    }
  };

  const handleEnrol = async (req: IncomingMessage, res: ServerResponse) => {
    limiter.take(clientIp(req));
    let raw: Buffer;
    try {
      raw = await readBody(req, 16 * 1024, budget.claim(res));
    } catch (err) {
      if (err instanceof OverBudget) return refuseBusy(req, res, null);
      return sendError(res, 413, 'BAD_REQUEST', 'enrolment request too large', { connection: 'close' });
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return sendError(res, 400, 'BAD_REQUEST', 'expected a JSON body');
    }
    const parsed = EnrolRequestSchema.safeParse(json);
    if (!parsed.success) {
      metrics.enrolments.inc({ outcome: 'bad_request' });
      return sendError(res, 400, 'BAD_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    }
    const r = parsed.data;
    const signingPublicKey = Buffer.from(r.signingPublicKey, 'base64url');
    const encryptionPublicKey = Buffer.from(r.encryptionPublicKey, 'base64url');
    const keyProblem = applianceKeyProblem({ signingPublicKey, encryptionPublicKey });
    if (keyProblem) {
      // Checked before the code is looked at: nothing is stored and the code stays usable.
      metrics.enrolments.inc({ outcome: 'bad_key' });
      logger.warn({ key: keyProblem.key, problem: keyProblem.problem }, 'enrolment refused: unusable public key');
      const field = keyProblem.key === 'signing' ? 'signingPublicKey' : 'encryptionPublicKey';
      return sendError(res, 400, 'BAD_REQUEST', `${field}: the key ${keyProblem.problem}; generate a fresh key pair and try again`);
    }
    let result;
    try {
      result = await store.redeemEnrolmentCode({ code: r.code, signingPublicKey, encryptionPublicKey, label: r.label ?? null, now: now() });
    } catch (err) {
      logger.error({ err: { message: (err as Error).message } }, 'enrolment failed: database error');
      return sendError(res, 503, 'UNAVAILABLE', 'the relay could not store the enrolment; try again shortly');
    }
    if (!result) {
      metrics.enrolments.inc({ outcome: 'invalid_code' });
      logger.warn('enrolment refused: unknown, used or expired code');
      return sendError(res, 403, 'ENROLMENT_CODE_INVALID', 'this enrolment code is unknown, already used or expired; ask the relay operator for a new one');
    }
    if (result.replaced) {
      hub.disconnect(result.replaced.applianceId, WS_CLOSE.revoked, 'RELAY_REVOKED');
      logger.info({ replacedApplianceId: result.replaced.applianceId, droppedEnvelopes: result.replaced.droppedEnvelopes }, 're-pairing replaced an appliance');
    }
    metrics.enrolments.inc({ outcome: 'enrolled' });
    logger.info({ tenantId: result.appliance.tenant_id, applianceId: result.appliance.id }, 'appliance enrolled');
    const response: EnrolResponse = {
      tenantId: result.appliance.tenant_id,
      applianceId: result.appliance.id,
      relayEncryptionPublicKey: relayKeyPair.publicRaw.toString('base64url'),
      phoneNumberIds: await store.phoneNumbersOf(result.appliance.tenant_id),
    };
    sendJson(res, 200, response);
  };

  /** Prometheus text, behind the bearer token when the operator set one. */
  const serveMetrics = async (req: IncomingMessage, res: ServerResponse, ip: string) => {
    if (metricsToken && !bearerMatches(req.headers.authorization, metricsToken)) {
      if (!limiter.allowed(ip)) return sendError(res, 429, 'RATE_LIMITED', 'too many unauthenticated requests; slow down', { 'retry-after': '60' });
      limiter.take(ip);
      return sendError(res, 401, 'RELAY_UNAUTHORIZED', 'metrics need the bearer token the operator configured', { 'www-authenticate': 'Bearer realm="relay-metrics"' });
    }
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const target = requestTarget(req.url);
    const ip = clientIp(req);
    const route = `${req.method} ${target.path}`;
    if (route === `POST ${WEBHOOK_PATH}`) res.once('finish', () => metrics.webhookResponses.inc({ code: String(res.statusCode) }));
    if (route === 'GET /healthz') return sendJson(res, 200, { status: 'ok' });
    if (route === 'GET /readyz') {
      if (shuttingDown) return sendJson(res, 503, { status: 'shutting_down' });
      if (!store.healthy()) return sendJson(res, 503, { status: 'queue_writer_down' });
      if (!databaseUp) return sendJson(res, 503, { status: 'database_unavailable' });
      return sendJson(res, 200, { status: 'ready' });
    }
    // Metrics show tenant ids and volumes: on this (public) listener only with the token; without
    // one they are served on the metrics listener alone (loopback by default).
    if (route === 'GET /metrics' && metricsToken) return serveMetrics(req, res, ip);
    // Everything below can be reached without a valid signature: an IP that keeps failing is slowed
    // down, and before any body is read (a signature header proves nothing until the whole body is
    // in memory and hashed). Only a check: correctly signed posts never spend tokens, so Meta's
    // addresses are not limited unless bad signatures come from them too (then Meta retries).
    if (!limiter.allowed(ip)) {
      metrics.webhooksRejected.inc({ reason: 'rate_limited' });
      return sendError(res, 429, 'RATE_LIMITED', 'too many unauthenticated requests; slow down', { 'retry-after': '60', connection: 'close' });
    }
    if (shuttingDown) return sendError(res, 503, 'UNAVAILABLE', 'relay shutting down', { connection: 'close' });
    if (route === `GET ${WEBHOOK_PATH}`) return handleVerify(req, res, target.query);
    if (route === `POST ${WEBHOOK_PATH}`) return handleWebhook(req, res);
    if (route === `POST ${ENROL_PATH}`) return handleEnrol(req, res);
    limiter.take(ip);
    sendError(res, 404, 'NOT_FOUND', 'no such endpoint');
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err: { message: (err as Error).message } }, 'request failed');
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'internal error');
      else res.destroy();
    });
  };

  const options: http.ServerOptions = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    // How often Node checks the two timeouts above; its default (30 s) would let slow clients linger.
    connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(config.headersTimeoutMs / 2))),
    maxHeaderSize: 16 * 1024,
  };
  const server = config.tls
    ? https.createServer({ ...options, cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }, onRequest)
    : http.createServer(options, onRequest);
  // Appliance sockets count too (an upgraded socket stays a connection of this server).
  server.maxConnections = config.maxConnections;
  let lastDropLog = 0;
  server.on('drop', () => {
    metrics.connectionsDropped.inc();
    if (now() - lastDropLog > 10_000) {
      lastDropLog = now();
      logger.warn({ maxConnections: config.maxConnections }, 'connections refused: RELAY_MAX_CONNECTIONS are open');
    }
  });

  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const ip = clientIp(req);
    if (shuttingDown || !limiter.allowed(ip)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
      return;
    }
    hub.handleUpgrade(req, socket, head, () => limiter.take(ip));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  });

  const metricsServer = config.metricsListen
    ? http.createServer({ headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs }, (req, res) => {
        const route = `${req.method} ${requestTarget(req.url).path}`;
        const answer = route === 'GET /metrics' ? serveMetrics(req, res, clientIp(req)) : Promise.resolve(sendError(res, 404, 'NOT_FOUND', 'this listener serves GET /metrics only'));
        answer.catch(() => res.destroy());
      })
    : null;

  // Behind relay_database_up (and /readyz): SQLite, a read on this connection and an empty write
  // transaction on the writer's; PostgreSQL, a query that also refuses a read-only standby. A
  // locked, missing, unreachable or failing database shows within one interval.
  let dbCheck: NodeJS.Timeout | null = null;
  let lastDbLog = true;
  const checkDatabase = () => {
    const timeout = new Promise<never>((_, fail) => setTimeout(() => fail(new Error('timed out')), Math.min(config.databaseCheckMs * 2, 5_000)).unref());
    Promise.race([store.probe(), timeout]).then(
      () => true,
      () => false,
    ).then((up) => {
      databaseUp = up && store.healthy();
      if (databaseUp !== lastDbLog) {
        lastDbLog = databaseUp;
        if (databaseUp) logger.info('database check passes again');
        else logger.error('database check failed: the relay cannot read or write its database');
      }
    });
  };

  let sweep: NodeJS.Timeout | null = null;
  const runSweep = () => {
    store.expire(now() - config.envelopeTtlMs).then(
      (expired) => {
        for (const [tenant, n] of expired) metrics.envelopesExpired.inc({ tenant }, n);
        if (expired.length) logger.info({ expired: Object.fromEntries(expired) }, 'expired unacknowledged envelopes');
      },
      (err: Error) => logger.error({ err: { message: err.message } }, 'expiry sweep failed'),
    );
  };

  return {
    async listen() {
      await disableUnusableAppliances(store, now(), logger, (reason) => metrics.appliancesDisabled.inc({ reason }));
      if (metricsServer) {
        const { host, port } = config.metricsListen!;
        await listenOn(metricsServer, port, host).catch((err: Error) => {
          throw new Error(`RELAY_METRICS_LISTEN ${host}:${port}: ${err.message}; choose another address or set it to off`);
        });
      }
      const address = await listenOn(server, config.port, config.host);
      runSweep();
      sweep = setInterval(runSweep, config.sweepIntervalMs);
      sweep.unref();
      dbCheck = setInterval(checkDatabase, config.databaseCheckMs);
      dbCheck.unref();
      return address;
    },
    address: () => (server.address() as AddressInfo | null) ?? null,
    metricsAddress: () => (metricsServer?.address() as AddressInfo | null) ?? null,
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      if (sweep) clearInterval(sweep);
      if (dbCheck) clearInterval(dbCheck);
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      hub.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // In-flight requests finish (their commits included) within the grace period, then are cut.
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      await hub.settled();
      await store.close();
    },
  };
}

function listenOn(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(port, host, () => {
      server.off('error', rejectListen);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Keys from before enrolment checked them (or written by anything else) are checked once at
 * start. An appliance with an unusable key is revoked, not served: a small-order signing key lets
 * anyone log in as it, and one cannot seal to a small-order encryption key. Its tenant then waits
 * like one without an appliance (503, Meta retries) until the clinic pairs again.
 */
async function disableUnusableAppliances(store: RelayStore, now: number, logger: Logger, count: (reason: string) => void): Promise<void> {
  for (const a of await store.activeAppliances()) {
    const problem = applianceKeyProblem({ signingPublicKey: a.signing_public_key, encryptionPublicKey: a.encryption_public_key });
    if (!problem) continue;
    const reason = problem.key === 'signing' ? 'bad_signing_key' : 'bad_encryption_key';
    const dropped = await store.revokeAppliance(a.id, now, reason);
    count(reason);
    logger.error(
      { applianceId: a.id, tenantId: a.tenant_id, reason, problem: problem.problem, droppedEnvelopes: dropped },
      'appliance disabled at start: its stored key is unusable; issue the clinic a new enrolment code',
    );
  }
}

function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? '');
  return given.length === token.length && timingSafeEqual(given, token);
}
