import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import {
  EVENT_SCHEMA,
  EVENT_SIGNATURE_HEADER,
  subscriptionUrlProblem,
  type Delivery,
  type EventType,
  type RpcEventName,
  type RpcEventPayload,
  type Subscription,
} from '../../../shared/rpc';
import type { Sealer } from '../accounts/seal';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { createJobLoop } from '../jobLoop';
import { currentConsentStatus } from '../privacy/consent';
import type { AuditRecord } from '../rpc/dispatch';

/** After this long without a 2xx an event is marked failed and the conversation's next one goes. */
export const RETRY_WINDOW_MS = 24 * 3_600_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/** Message text is cut to this in a body; a body never exceeds `MAX_BODY_BYTES`. */
export const MAX_TEXT_CHARS = 4096;
export const MAX_BODY_BYTES = 64 * 1024;
/** What is read of a subscriber's answer (the rest is discarded unread). */
export const MAX_RESPONSE_BYTES = 16 * 1024;

export function signEvent(secret: string, raw: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/** Events gathered before they are written: at most this long or this many. */
const FLUSH_MS = 25;
const FLUSH_EVENTS = 500;

/** Exponential from 2 s, capped at 1 h, with ±20 % jitter so a recovering subscriber is not hit at once. */
export function backoffMs(attempt: number): number {
  const base = Math.min(3_600_000, 2000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface PublishInput {
  type: EventType | 'test';
  conversationId: number | null;
  contactId: number | null;
  data: Record<string, unknown>;
  /** Only reaches subscribers that allow message text. */
  text?: string | null;
  /** One subscriber only (`events.sendTest`). */
  subscriptionId?: number;
}

export interface EventsDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  sealer: Sealer;
  installationId: string;
  audit(record: AuditRecord): void;
  /** Extra CA certificates for subscribers' HTTPS (a clinic's own CA; the test's self-signed server). */
  ca?: string | string[] | undefined;
  retryWindowMs?: number;
  /** Parallel conversations in flight per pass. */
  concurrency?: number;
}

interface SubscriptionRow {
  id: number;
  url: string;
  events_json: string;
  include_text: 0 | 1;
  enabled: 0 | 1;
  plain_http: 0 | 1;
  secret_sealed: string;
  created_at: number;
}

interface DeliveryRow {
  id: number;
  subscription_id: number;
  event_id: string;
  type: string;
  ordering_key: string;
  contact_id: number | null;
  body: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number | null;
  last_status_code: number | null;
  latency_ms: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
}

interface Attempt {
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

export interface EventsService {
  list(): Subscription[];
  create(input: { url: string; events: EventType[]; includeText: boolean; plainHttpConfirmed: boolean; by: string }): { subscription: Subscription; secret: string };
  update(input: { id: number; events?: EventType[] | undefined; includeText?: boolean | undefined; enabled?: boolean | undefined }): Subscription;
  remove(id: number): void;
  deliveries(subscriptionId: number, limit: number): Delivery[];
  sendTest(id: number): string;
  publish(input: PublishInput): void;
  /** An erased patient's events still waiting are dropped (what they carry must not leave any more). */
  forgetContact(contactId: number): number;
  /** Watches the core's push events for what subscribers follow (messages, statuses, opt-outs). */
  observe<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  start(): void;
  stop(): Promise<void>;
  /** One delivery pass now (tests, the benchmark). */
  deliverNow(): Promise<number>;
}

export function createEvents(deps: EventsDeps): EventsService {
  const { db, now, sealer } = deps;
  const log = deps.logger.child({ part: 'events' });
  const retryWindow = deps.retryWindowMs ?? RETRY_WINDOW_MS;
  const concurrency = deps.concurrency ?? 8;
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: concurrency, ...(deps.ca ? { ca: deps.ca } : {}) });
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
  const secrets = new Map<number, string>();
  let subscriptions: SubscriptionRow[] | null = null;
  let queued: PublishInput[] = [];
  let flushScheduled = false;

  const rows = (): SubscriptionRow[] => (subscriptions ??= stmt(db, 'SELECT * FROM event_subscriptions ORDER BY id').all() as SubscriptionRow[]);
  const eventsOf = (r: SubscriptionRow): EventType[] => JSON.parse(r.events_json) as EventType[];
  const secretOf = (r: SubscriptionRow): string => {
    let s = secrets.get(r.id);
    if (!s) secrets.set(r.id, (s = sealer.open(r.secret_sealed, `event-subscription:${r.id}`)));
    return s;
  };

  function view(r: SubscriptionRow): Subscription {
    const counts = stmt(db, `SELECT status, count(*) AS n FROM event_deliveries WHERE subscription_id = ? GROUP BY status`).all(r.id) as { status: string; n: number }[];
    const n = (s: string) => counts.find((c) => c.status === s)?.n ?? 0;
    return { id: r.id, url: r.url, events: eventsOf(r), includeText: r.include_text === 1, enabled: r.enabled === 1, plainHttp: r.plain_http === 1, createdAt: r.created_at, pending: n('pending'), delivered: n('delivered'), failed: n('failed') };
  }
  const rowOf = (id: number): SubscriptionRow => {
    const r = rows().find((x) => x.id === id);
    if (!r) throw new CodedError('NOT_FOUND', `There is no event subscription ${id}.`);
    return r;
  };

  const insertDelivery = () =>
    stmt(db, `INSERT INTO event_deliveries (subscription_id, event_id, type, ordering_key, contact_id, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);

  function bodyFor(sub: SubscriptionRow, input: PublishInput, eventId: string, at: number): string {
    const data = { ...input.data };
    if (sub.include_text === 1 && typeof input.text === 'string') data.text = input.text.slice(0, MAX_TEXT_CHARS);
    const body = JSON.stringify({ schema: EVENT_SCHEMA, id: eventId, type: input.type, occurredAt: new Date(at).toISOString(), installationId: deps.installationId, conversationId: input.conversationId, data });
    return Buffer.byteLength(body) <= MAX_BODY_BYTES ? body : JSON.stringify({ schema: EVENT_SCHEMA, id: eventId, type: input.type, occurredAt: new Date(at).toISOString(), installationId: deps.installationId, conversationId: input.conversationId, data: input.data, truncated: true });
  }

  /** Writes every queued event for every subscriber that wants it, in one transaction. */
  const flush = db.transaction((batch: PublishInput[]) => {
    const at = now();
    const insert = insertDelivery();
    for (const input of batch) {
      const eventId = `evt_${randomUUID()}`;
      for (const sub of rows()) {
        if (input.subscriptionId !== undefined ? sub.id !== input.subscriptionId : sub.enabled !== 1 || !eventsOf(sub).includes(input.type as EventType)) continue;
        const key = input.conversationId !== null ? `conversation:${input.conversationId}` : input.contactId !== null ? `contact:${input.contactId}` : 'clinic';
        insert.run(sub.id, eventId, input.type, key, input.contactId, bodyFor(sub, input, eventId, at), at, at);
      }
    }
  });

  function publish(input: PublishInput): void {
    if (rows().length === 0) return;
    queued.push(input);
    if (queued.length >= FLUSH_EVENTS) return writeQueued();
    if (flushScheduled) return;
    flushScheduled = true;
    // Off the caller's path (an ingest commit, a booking): one transaction for what gathered in a
    // short while, so a busy ingest does not pay a second commit for every delivery.
    setTimeout(writeQueued, FLUSH_MS).unref();
  }

  function writeQueued(): void {
    flushScheduled = false;
    const batch = queued;
    queued = [];
    if (batch.length === 0) return;
    try {
      flush(batch);
      loop.kick();
    } catch (err) {
      log.error({ err: err instanceof Error ? err.name : 'error', events: batch.length }, 'events not queued');
    }
  }

  function post(sub: SubscriptionRow, d: DeliveryRow): Promise<Attempt> {
    const started = performance.now();
    const raw = Buffer.from(d.body ?? '', 'utf8');
    const url = new URL(sub.url);
    const isHttps = url.protocol === 'https:';
    return new Promise<Attempt>((resolve) => {
      let done = false;
      const finish = (statusCode: number | null, error: string | null) => {
        if (done) return;
        done = true;
        resolve({ statusCode, error, latencyMs: Math.round(performance.now() - started) });
      };
      const req = (isHttps ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          agent: isHttps ? httpsAgent : httpAgent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: {
            'content-type': 'application/json',
            'content-length': raw.length,
            'user-agent': 'ClinicInbox-Events/1',
            'x-clinic-inbox-event': d.type,
            'x-clinic-inbox-delivery': d.event_id,
            [EVENT_SIGNATURE_HEADER.toLowerCase()]: signEvent(secretOf(sub), raw),
          },
        },
        (res) => {
          let read = 0;
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_RESPONSE_BYTES) res.destroy();
          });
          const code = res.statusCode ?? 0;
          const settle = () => finish(code, code >= 200 && code < 300 ? null : `HTTP ${code}`);
          res.on('end', settle);
          res.on('close', settle);
          res.on('error', settle);
        },
      );
      req.on('timeout', () => {
        req.destroy();
        finish(null, 'timeout');
      });
      req.on('error', (err: NodeJS.ErrnoException) => finish(null, err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? 'connection failed').slice(0, 60)));
      req.end(raw);
    });
  }

  // Outcomes are written in batches (one transaction per ~200 or per pass), not one commit per POST:
  // a crash before the write only means those events go again (at least once).
  type Outcome = { kind: 'delivered' | 'retry' | 'failed'; id: number; attempt: Attempt; at: number; next?: number };
  let outcomes: Outcome[] = [];
  const writeOutcomes = db.transaction((batch: Outcome[]) => {
    for (const o of batch) {
      if (o.kind === 'delivered') markDelivered().run(o.attempt.statusCode, o.attempt.latencyMs, o.at, o.id);
      else if (o.kind === 'failed') markFailed().run(o.attempt.statusCode, o.attempt.latencyMs, o.attempt.error, o.id);
      else markRetry().run(o.attempt.statusCode, o.attempt.latencyMs, o.attempt.error, o.next!, o.id);
    }
  });
  const record = (o: Outcome) => {
    outcomes.push(o);
    if (outcomes.length >= 200) flushOutcomes();
  };
  function flushOutcomes(): void {
    const batch = outcomes;
    outcomes = [];
    if (batch.length > 0) writeOutcomes(batch);
  }
  const markDelivered = () => stmt(db, `UPDATE event_deliveries SET status = 'delivered', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = NULL, delivered_at = ?, next_attempt_at = NULL WHERE id = ?`);
  const markRetry = () => stmt(db, `UPDATE event_deliveries SET attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`);
  const markFailed = () => stmt(db, `UPDATE event_deliveries SET status = 'failed', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = NULL WHERE id = ?`);

  /** One conversation's pending events for one subscriber, strictly in order; stops at the first that fails. */
  async function drainKey(sub: SubscriptionRow, key: string, delivered: Set<number>): Promise<number> {
    let sent = 0;
    const pendingRows = stmt(db, `SELECT * FROM event_deliveries WHERE subscription_id = ? AND ordering_key = ? AND status = 'pending' ORDER BY id LIMIT 100`).all(sub.id, key) as DeliveryRow[];
    for (const d of pendingRows) {
      if ((d.next_attempt_at ?? 0) > now()) break;
      const attempt = await post(sub, d);
      const at = now();
      if (attempt.error === null) {
        record({ kind: 'delivered', id: d.id, attempt, at });
        if (d.contact_id !== null) delivered.add(d.contact_id);
        sent++;
        continue;
      }
      const next = at + backoffMs(d.attempts + 1);
      if (next - d.created_at > retryWindow) {
        record({ kind: 'failed', id: d.id, attempt, at });
        log.warn({ subscriptionId: sub.id, deliveryId: d.id, attempts: d.attempts + 1 }, 'event delivery failed for good');
        continue;
      }
      record({ kind: 'retry', id: d.id, attempt, at, next });
      break;
    }
    return sent;
  }

  async function pass(): Promise<number> {
    let total = 0;
    for (const sub of rows().filter((r) => r.enabled === 1)) {
      const keys = (
        stmt(db, `SELECT ordering_key, min(COALESCE(next_attempt_at, 0)) AS due FROM event_deliveries WHERE subscription_id = ? AND status = 'pending' GROUP BY ordering_key HAVING due <= ? LIMIT 1000`).all(sub.id, now()) as {
          ordering_key: string;
        }[]
      ).map((k) => k.ordering_key);
      const delivered = new Set<number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, keys.length) }, async () => {
          while (next < keys.length) total += await drainKey(sub, keys[next++]!, delivered);
        }),
      );
      flushOutcomes();
      // Patient data left the computer: one export entry per subscriber and pass, naming the patients.
      if (delivered.size > 0) {
        deps.audit({ userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, action: 'export', method: 'events.deliver', contactIds: [...delivered], origin: 'core', outcome: 'ok', reason: `event subscription ${sub.id}` });
      }
    }
    return total;
  }

  function idleDelayMs(): number {
    const row = stmt(db, `SELECT min(next_attempt_at) AS at FROM event_deliveries WHERE status = 'pending'`).get() as { at: number | null };
    if (row.at === null) return 60_000;
    return Math.max(50, Math.min(60_000, row.at - now()));
  }

  const loop = createJobLoop({ name: 'events', logger: log, pass, idleDelayMs });

  return {
    list: () => rows().map(view),
    create({ url, events, includeText, plainHttpConfirmed, by }) {
      const problem = subscriptionUrlProblem(url, plainHttpConfirmed);
      if (problem) throw new CodedError('VALIDATION_FAILED', problem);
      const secret = randomBytes(32).toString('hex');
      const id = db.transaction(() => {
        const newId = Number(
          stmt(db, `INSERT INTO event_subscriptions (url, events_json, include_text, plain_http, secret_sealed, created_by, created_at) VALUES (?, ?, ?, ?, '', ?, ?)`).run(
            url,
            JSON.stringify([...new Set(events)]),
            includeText ? 1 : 0,
            url.toLowerCase().startsWith('http:') ? 1 : 0,
            by,
            now(),
          ).lastInsertRowid,
        );
        stmt(db, 'UPDATE event_subscriptions SET secret_sealed = ? WHERE id = ?').run(sealer.seal(secret, `event-subscription:${newId}`), newId);
        return newId;
      })();
      subscriptions = null;
      return { subscription: view(rowOf(id)), secret };
    },
    update({ id, events, includeText, enabled }) {
      rowOf(id);
      if (events) stmt(db, 'UPDATE event_subscriptions SET events_json = ? WHERE id = ?').run(JSON.stringify([...new Set(events)]), id);
      if (includeText !== undefined) stmt(db, 'UPDATE event_subscriptions SET include_text = ? WHERE id = ?').run(includeText ? 1 : 0, id);
      if (enabled !== undefined) stmt(db, 'UPDATE event_subscriptions SET enabled = ? WHERE id = ?').run(enabled ? 1 : 0, id);
      subscriptions = null;
      if (enabled) loop.kick();
      return view(rowOf(id));
    },
    remove(id) {
      rowOf(id);
      stmt(db, 'DELETE FROM event_subscriptions WHERE id = ?').run(id);
      secrets.delete(id);
      subscriptions = null;
    },
    deliveries(subscriptionId, limit) {
      rowOf(subscriptionId);
      return (stmt(db, 'SELECT * FROM event_deliveries WHERE subscription_id = ? ORDER BY id DESC LIMIT ?').all(subscriptionId, limit) as DeliveryRow[]).map((d) => ({
        id: d.id,
        eventId: d.event_id,
        type: d.type as Delivery['type'],
        status: d.status,
        attempts: d.attempts,
        lastStatusCode: d.last_status_code,
        latencyMs: d.latency_ms,
        lastError: d.last_error,
        createdAt: d.created_at,
        deliveredAt: d.delivered_at,
        nextAttemptAt: d.status === 'pending' ? d.next_attempt_at : null,
      }));
    },
    sendTest(id) {
      rowOf(id);
      const at = now();
      const eventId = `evt_${randomUUID()}`;
      const body = JSON.stringify({ schema: EVENT_SCHEMA, id: eventId, type: 'test', occurredAt: new Date(at).toISOString(), installationId: deps.installationId, conversationId: null, data: { message: 'A test event from Clinic Inbox.' } });
      insertDelivery().run(id, eventId, 'test', 'test', null, body, at, at);
      loop.kick();
      return eventId;
    },
    publish,
    forgetContact(contactId) {
      writeQueued();
      return stmt(db, `DELETE FROM event_deliveries WHERE contact_id = ? AND status = 'pending'`).run(contactId).changes;
    },
    observe(event, payload) {
      if (rows().length === 0) return;
      if (event === 'message.received') {
        const { conversationId, messageId } = payload as RpcEventPayload<'message.received'>;
        const m = stmt(db, `SELECT m.direction, m.type, m.text, m.received_at, c.contact_id FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?`).get(messageId) as
          | { direction: string; type: string; text: string | null; received_at: number; contact_id: number }
          | undefined;
        if (!m || m.direction !== 'inbound') return;
        publish({ type: 'message.received', conversationId, contactId: m.contact_id, data: { conversationId, contactId: m.contact_id, messageId, messageType: m.type, receivedAt: new Date(m.received_at).toISOString() }, text: m.text });
      } else if (event === 'message.statusChanged') {
        const { conversationId, messageId, status } = payload as RpcEventPayload<'message.statusChanged'>;
        const c = stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined;
        publish({ type: 'message.status', conversationId, contactId: c?.contact_id ?? null, data: { conversationId, messageId, status } });
      } else if (event === 'privacy.consentChanged') {
        const { contactId } = payload as RpcEventPayload<'privacy.consentChanged'>;
        if (currentConsentStatus(db, contactId) === 'opted_out') publish({ type: 'contact.opted_out', conversationId: null, contactId, data: { contactId } });
      }
    },
    start: () => loop.start(),
    async stop() {
      writeQueued();
      await loop.stop();
      httpsAgent.destroy();
      httpAgent.destroy();
    },
    deliverNow: async () => {
      // Whatever was published is written first; then passes until one has nothing left to send.
      writeQueued();
      let total = 0;
      for (let n = await loop.runOnce(); n > 0; n = await loop.runOnce()) total += n;
      return total;
    },
  };
}
