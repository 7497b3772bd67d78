// A delivery log write that fails (the database busy past its timeout, say) ends the pass with an
// error the worker handles, never an unhandled rejection that takes its thread down; what was not
// recorded goes again on the next pass, each conversation still in order.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSealer } from '../accounts/seal';
import { createTestDb, type TestDb } from '../testing/testDb';
import { startEventSubscriber, type EventSubscriber } from '../testing/eventSubscriber';
import { createDeliverer } from './delivery';
import { writeOutcomes, type OutcomeBatch } from './outcomes';

const KEYS = ['conversation:1', 'conversation:2'];
const PER_KEY = 12;
const SECRET = randomBytes(32).toString('hex');

let t: TestDb;
let sub: EventSubscriber;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeEach(async () => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
  t = createTestDb();
  sub = await startEventSubscriber({ secret: () => SECRET });
  const sealer = createSealer(t.key, 'events');
  t.db
    .prepare(`INSERT INTO event_subscriptions (id, url, events_json, include_text, plain_http, secret_sealed, created_by, created_at) VALUES (1, ?, '["booking.created"]', 0, 0, ?, 'admin', 1)`)
    .run(sub.url, sealer.seal(SECRET, 'event-subscription:1'));
  const insert = t.db.prepare(`INSERT INTO event_deliveries (subscription_id, event_id, type, ordering_key, body, created_at) VALUES (1, ?, 'booking.created', ?, ?, 1)`);
  for (let n = 0; n < PER_KEY; n++) {
    for (const [k, key] of KEYS.entries()) {
      const id = `evt-${k}-${n}`;
      insert.run(id, key, JSON.stringify({ id, type: 'booking.created', conversationId: k + 1, data: { n } }));
    }
  }
});

afterEach(async () => {
  process.off('unhandledRejection', onUnhandled);
  await sub.close();
  t.cleanup();
});

/** Per conversation, the order in which each event first arrived. */
function firstArrivals(): Map<number, number[]> {
  const seen = new Set<string>();
  const order = new Map<number, number[]>([[1, []], [2, []]]);
  for (const e of sub.received) {
    if (seen.has(e.body.id)) continue;
    seen.add(e.body.id);
    order.get(e.body.conversationId!)!.push(e.body.data.n as number);
  }
  return order;
}

const delivered = () => t.db.prepare(`SELECT count(*) FROM event_deliveries WHERE status = 'delivered'`).pluck().get() as number;

describe('a delivery log write that fails', () => {
  it('ends the pass with its error, stops sending, and the next pass delivers everything in order', async () => {
    let failNext = true;
    const deliverer = createDeliverer({
      db: t.db,
      now: Date.now,
      sealer: createSealer(t.key, 'events'),
      ca: sub.cert,
      concurrency: 1,
      warn: () => undefined,
      expand: async () => undefined,
      write: async (batch: OutcomeBatch) => {
        if (failNext) {
          failNext = false;
          throw new Error('SQLITE_BUSY: database is locked');
        }
        writeOutcomes(t.db, [batch], Date.now());
      },
    });
    // Slow answers, so the outcomes are written in several batches (one every 250 ms) while the
    // lane still sends: the first batch's write fails with events still waiting.
    sub.slow(60);
    await expect(deliverer.pass()).rejects.toThrow('SQLITE_BUSY');
    expect(unhandled).toEqual([]);
    expect(delivered()).toBe(0);
    // It stopped at the failure instead of sending the rest while nothing could be recorded.
    expect(sub.received.length).toBeLessThan(KEYS.length * PER_KEY);
    expect(sub.forged).toBe(0);

    sub.slow(0);
    await deliverer.pass();
    deliverer.stop();
    expect(delivered()).toBe(KEYS.length * PER_KEY);
    const inOrder = Array.from({ length: PER_KEY }, (_, n) => n);
    expect(firstArrivals()).toEqual(new Map([[1, inOrder], [2, inOrder]]));
    expect(unhandled).toEqual([]);
  }, 30_000);
});
