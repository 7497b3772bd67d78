import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import {
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
import type { IngestResult } from '../link/delivery';
import { currentConsentStatus } from '../privacy/consent';
import { appendIngestToOutbox, appendToOutbox, forgetInOutbox, newEventId, receivedData, type IngestItem, type OutboxEvent } from './outbox';
import { createIngestSignal } from './ingestSignal';
import { startEventsWorker, type EventsWorker } from './workerHost';

export { backoffMs, signEvent, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT_MS, RETRY_WINDOW_MS } from './delivery';
export { MAX_BODY_BYTES, MAX_TEXT_CHARS } from './outbox';

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
  /** The worker opens its own connection to the same file, with the same key (in memory only). */
  databasePath: string;
  databaseKey: Buffer;
  /** Extra CA certificates for subscribers' HTTPS (a clinic's own CA; the test's self-signed server). */
  ca?: string | string[] | undefined;
  retryWindowMs?: number;
  /** Requests in flight per subscription (each to a different conversation). */
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
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number | null;
  last_status_code: number | null;
  latency_ms: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
}

export interface EventsService {
  list(): Subscription[];
  create(input: { url: string; events: EventType[]; includeText: boolean; plainHttpConfirmed: boolean; by: string }): { subscription: Subscription; secret: string };
  update(input: { id: number; events?: EventType[] | undefined; includeText?: boolean | undefined; enabled?: boolean | undefined }): Subscription;
  remove(id: number): void;
  deliveries(subscriptionId: number, limit: number): Delivery[];
  sendTest(id: number): string;
  /**
   * Queues an event for every subscriber that wants it: rows written at once, inside the caller's
   * transaction when there is one (so the event commits with the change it describes), in a
   * commit of their own otherwise. The worker is woken once the caller's work is done.
   */
  publish(input: PublishInput): void;
  /** Inside the ingest transaction: the batch's new inbound messages and status changes, queued with it. */
  enqueueIngested(results: readonly IngestResult[]): void;
  /** An erased patient's events still waiting are dropped (what they carry must not leave any more). */
  forgetContact(contactId: number): number;
  /** Watches the core's push events for what subscribers follow (messages, statuses, opt-outs). */
  observe<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  start(): void;
  stop(): Promise<void>;
  /** Delivery passes until one has nothing left to send (tests, the benchmark); how many were delivered. */
  deliverNow(): Promise<number>;
  /** The worker thread dies as if it crashed (tests: it is started again and nothing is lost). */
  crashWorker(): Promise<void>;
}

export function createEvents(deps: EventsDeps): EventsService {
  const { db, now, sealer } = deps;
  const log = deps.logger.child({ part: 'events' });
  let subscriptions: SubscriptionRow[] | null = null;
  const eventsOf = new Map<number, EventType[]>();
  /** Messages and statuses queued inside the last ingest transaction: their push events that follow are not queued again. */
  const queuedWithIngest = new Set<string>();
  let kickScheduled = false;
  let worker: EventsWorker | null = null;
  let stopped = false;
  const ingestSignal = createIngestSignal();

  const rows = (): SubscriptionRow[] => (subscriptions ??= stmt(db, 'SELECT * FROM event_subscriptions ORDER BY id').all() as SubscriptionRow[]);
  const wants = (r: SubscriptionRow): EventType[] => {
    let list = eventsOf.get(r.id);
    if (!list) eventsOf.set(r.id, (list = JSON.parse(r.events_json) as EventType[]));
    return list;
  };
  const changedSubscriptions = () => {
    subscriptions = null;
    eventsOf.clear();
  };

  function view(r: SubscriptionRow): Subscription {
    const counts = stmt(db, `SELECT status, count(*) AS n FROM event_deliveries WHERE subscription_id = ? GROUP BY status`).all(r.id) as { status: string; n: number }[];
    const n = (s: string) => counts.find((c) => c.status === s)?.n ?? 0;
    return { id: r.id, url: r.url, events: wants(r), includeText: r.include_text === 1, enabled: r.enabled === 1, plainHttp: r.plain_http === 1, createdAt: r.created_at, pending: n('pending'), delivered: n('delivered'), failed: n('failed') };
  }
  const rowOf = (id: number): SubscriptionRow => {
    const r = rows().find((x) => x.id === id);
    if (!r) throw new CodedError('NOT_FOUND', `There is no event subscription ${id}.`);
    return r;
  };

  /** The worker hears of new rows once the caller's synchronous work (and so its commit) is done. */
  function kickSoon(): void {
    if (kickScheduled) return;
    kickScheduled = true;
    setImmediate(() => {
      kickScheduled = false;
      if (!stopped) ensureWorker().kick(now());
    });
  }

  function subscribersOf(input: PublishInput): SubscriptionRow[] {
    return rows().filter((sub) => (input.subscriptionId !== undefined ? sub.id === input.subscriptionId : sub.enabled === 1 && wants(sub).includes(input.type as EventType)));
  }

  function publish(input: PublishInput): void {
    const subs = subscribersOf(input);
    if (subs.length === 0) return;
    const at = now();
    const event: OutboxEvent = { id: newEventId(at), type: input.type, at, conversationId: input.conversationId, contactId: input.contactId, data: input.data };
    if (typeof input.text === 'string' && subs.some((s) => s.include_text === 1)) event.text = input.text;
    if (input.subscriptionId !== undefined) event.subscriptionId = input.subscriptionId;
    try {
      // In the caller's transaction when there is one; a commit of its own otherwise.
      appendToOutbox(db, [event], at);
    } catch (err) {
      log.error({ err: err instanceof Error ? err.name : 'error', type: input.type }, 'event not queued');
      return;
    }
    kickSoon();
  }

  interface ReceivedRow {
    id: number;
    direction: string;
    type: string;
    text: string | null;
    received_at: number;
    contact_id: number;
  }
  const RECEIVED_COLUMNS = 'm.id, m.direction, m.type, m.text, m.received_at, c.contact_id FROM messages m JOIN conversations c ON c.id = m.conversation_id';
  function publishReceived(conversationId: number, messageId: number): void {
    const m = stmt(db, `SELECT ${RECEIVED_COLUMNS} WHERE m.id = ?`).get(messageId) as ReceivedRow | undefined;
    if (!m || m.direction !== 'inbound') return;
    publish({ type: 'message.received', conversationId, contactId: m.contact_id, data: receivedData(messageId, m, conversationId), text: m.text });
  }
  function publishStatus(conversationId: number, messageId: number, status: string): void {
    const c = stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined;
    publish({ type: 'message.status', conversationId, contactId: c?.contact_id ?? null, data: { conversationId, messageId, status } });
  }
  const wanted = (type: EventType) => rows().some((sub) => sub.enabled === 1 && wants(sub).includes(type));
  /**
   * One outbox row for the batch, ids only (`appendIngestToOutbox`): the worker builds the bodies.
   * A savepoint, so should queuing fail the ingest still commits (and it is logged).
   */
  const enqueueBatch = db.transaction((results: readonly IngestResult[], received: boolean, statuses: boolean) => {
    const items: IngestItem[] = [];
    for (const r of results) {
      if (received) {
        for (const m of r.newMessages) {
          queuedWithIngest.add(`m:${m.messageId}`);
          items.push(['r', m.messageId, m.wamid]);
        }
      }
      if (statuses) {
        for (const c of r.statusChanges) {
          queuedWithIngest.add(`s:${c.messageId}:${c.status}`);
          items.push(['s', c.messageId, c.wamid, c.status]);
        }
      }
    }
    appendIngestToOutbox(db, items, now());
    if (items.length > 0) kickSoon();
  });

  /** Started with the first subscription (or at start when there is one), stopped with the core. */
  function ensureWorker(): EventsWorker {
    if (stopped) throw new CodedError('UNAVAILABLE', 'Event delivery has stopped: the core is closing.');
    worker ??= startEventsWorker({
      data: { databasePath: deps.databasePath, databaseKey: deps.databaseKey.toString('hex'), systemClock: now === Date.now, installationId: deps.installationId, ca: deps.ca, retryWindowMs: deps.retryWindowMs, concurrency: deps.concurrency, ingestSignal: ingestSignal.buffer },
      logger: log,
      now,
    });
    return worker;
  }

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
      changedSubscriptions();
      return { subscription: view(rowOf(id)), secret };
    },
    update({ id, events, includeText, enabled }) {
      rowOf(id);
      if (events) stmt(db, 'UPDATE event_subscriptions SET events_json = ? WHERE id = ?').run(JSON.stringify([...new Set(events)]), id);
      if (includeText !== undefined) stmt(db, 'UPDATE event_subscriptions SET include_text = ? WHERE id = ?').run(includeText ? 1 : 0, id);
      if (enabled !== undefined) stmt(db, 'UPDATE event_subscriptions SET enabled = ? WHERE id = ?').run(enabled ? 1 : 0, id);
      changedSubscriptions();
      if (enabled) kickSoon();
      return view(rowOf(id));
    },
    remove(id) {
      rowOf(id);
      stmt(db, 'DELETE FROM event_subscriptions WHERE id = ?').run(id);
      changedSubscriptions();
    },
    deliveries(subscriptionId, limit) {
      rowOf(subscriptionId);
      const list = stmt(
        db,
        'SELECT id, subscription_id, event_id, type, status, attempts, next_attempt_at, last_status_code, latency_ms, last_error, created_at, delivered_at FROM event_deliveries WHERE subscription_id = ? ORDER BY id DESC LIMIT ?',
      ).all(subscriptionId, limit) as DeliveryRow[];
      return list.map((d) => ({
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
      const event: OutboxEvent = { id: newEventId(at), type: 'test', at, conversationId: null, contactId: null, data: { message: 'A test event from Clinic Inbox.' }, subscriptionId: id };
      appendToOutbox(db, [event], at);
      kickSoon();
      return event.id;
    },
    publish,
    enqueueIngested(results) {
      queuedWithIngest.clear();
      if (rows().length === 0) return;
      // Runs once the batch's commit returned: the worker's next write goes in the gap after it.
      queueMicrotask(ingestSignal.committed);
      const received = wanted('message.received');
      const statuses = wanted('message.status');
      if (!received && !statuses) return;
      try {
        enqueueBatch(results, received, statuses);
      } catch (err) {
        queuedWithIngest.clear();
        log.error({ err: err instanceof Error ? err.name : 'error', deliveries: results.length }, 'ingested events not queued');
      }
    },
    forgetContact: (contactId) =>
      db.transaction(() => forgetInOutbox(db, contactId) + stmt(db, `DELETE FROM event_deliveries WHERE contact_id = ? AND status = 'pending'`).run(contactId).changes)(),
    observe(event, payload) {
      if (rows().length === 0) return;
      if (event === 'message.received') {
        const { conversationId, messageId } = payload as RpcEventPayload<'message.received'>;
        if (!queuedWithIngest.delete(`m:${messageId}`)) publishReceived(conversationId, messageId);
      } else if (event === 'message.statusChanged') {
        const { conversationId, messageId, status } = payload as RpcEventPayload<'message.statusChanged'>;
        if (!queuedWithIngest.delete(`s:${messageId}:${status}`)) publishStatus(conversationId, messageId, status);
      } else if (event === 'privacy.consentChanged') {
        const { contactId } = payload as RpcEventPayload<'privacy.consentChanged'>;
        if (currentConsentStatus(db, contactId) === 'opted_out') publish({ type: 'contact.opted_out', conversationId: null, contactId, data: { contactId } });
      }
    },
    start() {
      // Whatever a crash or a shutdown left waiting goes out now.
      if (rows().length > 0) ensureWorker().kick(now());
    },
    async stop() {
      stopped = true;
      const w = worker;
      worker = null;
      await w?.stop();
    },
    deliverNow: () => ensureWorker().drain(now()),
    crashWorker: () => ensureWorker().crash(),
  };
}
