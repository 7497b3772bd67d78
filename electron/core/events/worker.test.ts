// Delivery runs in a worker thread: events queued before a stop or a crash still reach the
// subscriber after it, each at least once and in order per conversation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEventSubscriber, type EventSubscriber } from '../testing/eventSubscriber';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { threadNices } from '../testing/threads';
import { adminConnection, rpc } from '../testing/users';

let sub: EventSubscriber;
let s: SeededCore;

beforeAll(async () => {
  sub = await startEventSubscriber();
  s = await startSeededCore({ core: { events: { ca: sub.cert } } });
  await rpc(await adminConnection(s.core), 'events.create', { url: sub.url, events: ['booking.created'] });
}, 60_000);

afterAll(async () => {
  await s?.stop();
  await sub?.close();
});

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const CONVERSATIONS = [101, 102, 103];
const PER_CONVERSATION = 15;

function publishAll(tag: string): void {
  for (let n = 0; n < PER_CONVERSATION; n++) {
    for (const conversationId of CONVERSATIONS) s.core.events.publish({ type: 'booking.created', conversationId, contactId: null, data: { tag, n } });
  }
}

/** Per conversation, the order in which each event first arrived; every event at least once. */
function firstArrivals(tag: string): Map<number, number[]> {
  const seen = new Set<string>();
  const order = new Map<number, number[]>(CONVERSATIONS.map((c) => [c, []]));
  for (const e of sub.received) {
    if (e.body.data.tag !== tag || seen.has(e.body.id)) continue;
    seen.add(e.body.id);
    order.get(e.body.conversationId!)!.push(e.body.data.n as number);
  }
  return order;
}
const inOrder = Array.from({ length: PER_CONVERSATION }, (_, n) => n);

/** Threads of this process at background priority (nice 19) beside the core's own thread. */
const backgroundThreads = () => [...threadNices()].filter(([tid, nice]) => nice === 19 && tid !== process.pid).length;

describe('the events worker', () => {
  it.runIf(process.platform === 'linux')('runs at background priority while the core’s thread keeps its own', async () => {
    const before = threadNices().get(process.pid);
    await s.core.events.deliverNow();
    expect(backgroundThreads()).toBe(1);
    expect(threadNices().get(process.pid)).toBe(before);
  });

  it('delivers what was waiting when the core stopped mid-delivery, after it starts again, in order', async () => {
    sub.slow(40);
    publishAll('restart');
    await waitFor('some delivered', () => sub.received.filter((e) => e.body.data.tag === 'restart').length >= 6, 30_000);
    const before = sub.received.length;
    await s.reopen();
    // The stop really came mid-delivery: not everything had arrived.
    expect(before).toBeLessThan(CONVERSATIONS.length * PER_CONVERSATION);
    sub.slow(0);
    await s.core.events.deliverNow();
    for (const c of CONVERSATIONS) expect(firstArrivals('restart').get(c)).toEqual(inOrder);
    const pending = s.read((db) => db.prepare(`SELECT count(*) FROM event_deliveries WHERE status != 'delivered'`).pluck().get() as number);
    expect(pending).toBe(0);
  }, 60_000);

  it('starts the worker again when it dies, and what it was sending goes again', async () => {
    sub.slow(40);
    publishAll('crash');
    await waitFor('some delivered', () => sub.received.filter((e) => e.body.data.tag === 'crash').length >= 6, 30_000);
    await s.core.events.crashWorker();
    sub.slow(0);
    // A drain asked of the dead worker is answered by the next one.
    await s.core.events.deliverNow();
    for (const c of CONVERSATIONS) expect(firstArrivals('crash').get(c)).toEqual(inOrder);
    expect(s.logLines.some((l) => l.includes('events worker stopped; starting it again'))).toBe(true);
    // The worker started again is a background thread too.
    if (process.platform === 'linux') expect(backgroundThreads()).toBe(1);
  }, 60_000);
});
