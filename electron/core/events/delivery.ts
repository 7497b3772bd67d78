// Delivery of queued events to subscribers: signing, HTTPS with keep-alive, retries with backoff,
// the delivery log's writes in batches (`outcomes.ts`). Runs in the events worker thread
// (`eventsWorker.ts`) on a connection of its own, so none of it shares the core's thread with ingest,
// the desk's calls or the relay link.
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { Pool } from 'undici';
import { EVENT_SIGNATURE_HEADER } from '../../../shared/rpc/events';
import type { Sealer } from '../accounts/seal';
import type { Database } from '../db/types';
import type { Outcome, OutcomeBatch } from './outcomes';
import { createPacer } from './pacing';

/** After this long without a 2xx an event is marked failed and the conversation's next one goes. */
export const RETRY_WINDOW_MS = 24 * 3_600_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/** What is read of a subscriber's answer (the rest is discarded unread). */
export const MAX_RESPONSE_BYTES = 16 * 1024;
/** Requests in flight per subscription (each to a different conversation). */
export const DEFAULT_CONCURRENCY = 16;
/** Outcomes written in one transaction at most this many (a short hold of the write lock), or this often. */
const OUTCOME_BATCH = 200;
const OUTCOME_FLUSH_MS = 250;

export function signEvent(secret: string | KeyObject, raw: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/** Exponential from 2 s, capped at 1 h, with ±20 % jitter so a recovering subscriber is not hit at once. */
export function backoffMs(attempt: number): number {
  const base = Math.min(3_600_000, 2000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

const SIGNATURE_HEADER = EVENT_SIGNATURE_HEADER.toLowerCase();
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** What the delivery log says of a request that got no answer: a code, never a message (it may quote the address). */
function requestError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'connection failed';
  if (TIMEOUTS.has(code)) return 'timeout';
  if (code === 'ECONNREFUSED') return 'connection refused';
  return code.slice(0, 60);
}

interface SubscriptionRow {
  id: number;
  url: string;
  enabled: 0 | 1;
  secret_sealed: string;
}

interface DeliveryRow {
  id: number;
  event_id: string;
  type: string;
  contact_id: number | null;
  body: string | null;
  attempts: number;
  next_attempt_at: number | null;
  created_at: number;
}


export interface DelivererDeps {
  db: Database;
  now: () => number;
  sealer: Sealer;
  ca?: string | string[] | undefined;
  retryWindowMs?: number | undefined;
  concurrency?: number | undefined;
  warn(fields: Record<string, unknown>, message: string): void;
  /** Turns what the core queued since the last pass into deliveries (`outbox.ts`). */
  expand(): Promise<void>;
  /** Writes a batch of outcomes (the delivery log); a pass ends only once its batches are written. */
  write(batch: OutcomeBatch): Promise<void>;
  /** Whether the core is working through an ingest backlog: sends are paced meanwhile (`pacing.ts`). */
  ingesting?(): boolean;
}

export interface Deliverer {
  /** One pass over what is due, every subscription at once; returns how many events were delivered. */
  pass(): Promise<number>;
  /** The earliest retry still waiting (ms since epoch), or null. */
  nextDueAt(): number | null;
  /** Stops: requests in flight are dropped unrecorded (they go again), what was recorded is written. */
  stop(): void;
}

export function createDeliverer(deps: DelivererDeps): Deliverer {
  const { db, now, sealer } = deps;
  const retryWindow = deps.retryWindowMs ?? RETRY_WINDOW_MS;
  const concurrency = deps.concurrency ?? DEFAULT_CONCURRENCY;
  /** Opened once per subscription, as a key object: no key conversion per event. */
  const secrets = new Map<string, KeyObject>();
  const pacers = new Map<number, ReturnType<typeof createPacer>>();
  const ingesting = deps.ingesting ?? (() => false);
  let stopped = false;

  const q = {
    subscriptions: db.prepare('SELECT id, url, enabled, secret_sealed FROM event_subscriptions WHERE enabled = 1 ORDER BY id'),
    dueKeys: db.prepare(
      `SELECT ordering_key, min(COALESCE(next_attempt_at, 0)) AS due FROM event_deliveries WHERE subscription_id = ? AND status = 'pending' GROUP BY ordering_key HAVING due <= ? ORDER BY min(id) LIMIT 1000`,
    ),
    pendingOfKey: db.prepare(
      `SELECT id, event_id, type, contact_id, body, attempts, next_attempt_at, created_at FROM event_deliveries WHERE subscription_id = ? AND ordering_key = ? AND status = 'pending' ORDER BY id LIMIT 100`,
    ),
    // The first waiting event of each conversation decides when it goes: the ones behind it wait for it.
    nextDue: db
      .prepare(
        `SELECT min(d.next_attempt_at) FROM event_deliveries d JOIN event_subscriptions s ON s.id = d.subscription_id AND s.enabled = 1
         WHERE d.status = 'pending' AND d.id = (SELECT min(e.id) FROM event_deliveries e WHERE e.subscription_id = d.subscription_id AND e.ordering_key = d.ordering_key AND e.status = 'pending')`,
      )
      .pluck(),
    delivered: db.prepare(
      `UPDATE event_deliveries SET status = 'delivered', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = NULL, delivered_at = ?, next_attempt_at = NULL WHERE id = ? AND status = 'pending'`,
    ),
    retry: db.prepare(`UPDATE event_deliveries SET attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'`),
    failed: db.prepare(
      `UPDATE event_deliveries SET status = 'failed', body = NULL, attempts = attempts + 1, last_status_code = ?, latency_ms = ?, last_error = ?, next_attempt_at = NULL WHERE id = ? AND status = 'pending'`,
    ),
  };

  const secretOf = (sub: SubscriptionRow): KeyObject => {
    let s = secrets.get(sub.secret_sealed);
    // The secret's 64 hex characters are the HMAC key as they stand (what the subscriber was shown).
    if (!s) secrets.set(sub.secret_sealed, (s = createSecretKey(Buffer.from(sealer.open(sub.secret_sealed, `event-subscription:${sub.id}`), 'utf8'))));
    return s;
  };

  const endpoints = new Map<string, { pool: Pool; path: string }>();
  /** One pool of keep-alive connections per subscriber address, `concurrency` wide (one per lane). */
  const endpointOf = (address: string) => {
    let e = endpoints.get(address);
    if (!e) {
      const url = new URL(address);
      const pool = new Pool(url.origin, {
        connections: concurrency,
        // One request at a time per connection: any HTTP/1.1 server takes that, and a lane's
        // next event waits for this one's answer anyway.
        pipelining: 1,
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
        connect: { timeout: REQUEST_TIMEOUT_MS, ...(deps.ca ? { ca: deps.ca } : {}) },
      });
      endpoints.set(address, (e = { pool, path: url.pathname + url.search }));
    }
    return e;
  };

  async function post(sub: SubscriptionRow, d: DeliveryRow): Promise<Outcome['attempt']> {
    const started = performance.now();
    const raw = Buffer.from(d.body ?? '', 'utf8');
    const { pool, path } = endpointOf(sub.url);
    const attempt = (statusCode: number | null, error: string | null) => ({ statusCode, error, latencyMs: Math.round(performance.now() - started) });
    try {
      const res = await pool.request({
        method: 'POST',
        path,
        body: raw,
        // Never follows a redirect (undici's default): requests go only to the configured address.
        headers: [
          'content-type', 'application/json',
          'user-agent', 'ClinicInbox-Events/1',
          'x-clinic-inbox-event', d.type,
          'x-clinic-inbox-delivery', d.event_id,
          SIGNATURE_HEADER, signEvent(secretOf(sub), raw),
        ],
      });
      // What is past the first 16 KiB is not read: the connection is closed instead.
      await res.body.dump({ limit: MAX_RESPONSE_BYTES });
      const code = res.statusCode;
      return attempt(code, code >= 200 && code < 300 ? null : `HTTP ${code}`);
    } catch (err) {
      return attempt(null, requestError(err));
    }
  }

  /** One subscriber's due conversations, `concurrency` at a time, each strictly in order. */
  async function passOf(sub: SubscriptionRow): Promise<number> {
    let pacer = pacers.get(sub.id);
    if (!pacer) pacers.set(sub.id, (pacer = createPacer({ ingesting })));
    const pace = pacer;
    const keys = (q.dueKeys.all(sub.id, now()) as { ordering_key: string }[]).map((k) => k.ordering_key);
    let outcomes: Outcome[] = [];
    let contacts = new Set<number>();
    let flushedAt = performance.now();
    // Written one batch after the other while sending goes on; the next pass reads what they wrote.
    let written = Promise.resolve();
    // A batch that could not be written (the database busy past its timeout, say) ends the pass:
    // the chain skips the batches after it, so every event not recorded goes again, in order, on
    // the next pass. Its rejection is handled here at once and thrown when the pass ends; left
    // unhandled while the lanes still send, it would take the worker thread down.
    let writeFailed = false;
    const flush = () => {
      if (outcomes.length > 0) {
        const batch: OutcomeBatch = { subscriptionId: sub.id, outcomes, contactIds: [...contacts] };
        written = written.then(() => deps.write(batch));
        written.catch(() => {
          writeFailed = true;
        });
      }
      outcomes = [];
      contacts = new Set();
      flushedAt = performance.now();
    };
    const record = (o: Outcome, contactId: number | null) => {
      outcomes.push(o);
      if (o.kind === 'delivered' && contactId !== null) contacts.add(contactId);
      if (outcomes.length >= OUTCOME_BATCH || performance.now() - flushedAt >= OUTCOME_FLUSH_MS) flush();
    };

    /** Stops at the first event that is not due or not delivered: the ones after it wait behind it. */
    const drainKey = async (key: string): Promise<number> => {
      let sent = 0;
      for (const d of q.pendingOfKey.all(sub.id, key) as DeliveryRow[]) {
        if (stopped || writeFailed || (d.next_attempt_at ?? 0) > now()) break;
        await pace.next();
        if (stopped) break;
        const attempt = await post(sub, d);
        if (stopped) break; // cut off by the stop: not recorded, so it goes again
        const at = now();
        if (attempt.error === null) {
          record({ kind: 'delivered', id: d.id, attempt, at }, d.contact_id);
          sent++;
          continue;
        }
        const next = at + backoffMs(d.attempts + 1);
        if (next - d.created_at > retryWindow) {
          record({ kind: 'failed', id: d.id, attempt, at }, null);
          deps.warn({ subscriptionId: sub.id, deliveryId: d.id, attempts: d.attempts + 1 }, 'event delivery failed for good');
          continue;
        }
        record({ kind: 'retry', id: d.id, attempt, at, next }, null);
        break;
      }
      return sent;
    };

    let total = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, keys.length) }, async () => {
        while (next < keys.length && !stopped && !writeFailed) {
          // Not `total += await …`: that reads `total` before the wait, and the lanes overwrite each other.
          const sent = await drainKey(keys[next++]!);
          total += sent;
        }
      }),
    );
    flush();
    await written;
    return total;
  }

  return {
    async pass() {
      await deps.expand();
      const subs = q.subscriptions.all() as SubscriptionRow[];
      const counts = await Promise.all(subs.map(passOf));
      return counts.reduce((a, b) => a + b, 0);
    },
    nextDueAt: () => q.nextDue.get() as number | null,
    stop() {
      stopped = true;
      for (const { pool } of endpoints.values()) void pool.destroy().catch(() => undefined);
    },
  };
}
