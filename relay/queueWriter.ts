/**
 * The main thread's handle on the queue writer thread (`queueWriterWorker.ts`). Every write to
 * the envelope queue goes through it, so fsyncs happen off the event loop and concurrent webhooks
 * share them (group commit).
 */
import { Worker } from 'node:worker_threads';
import type { PartOutcome, TenantPart } from './intake';
import { RoutingChanged, type LeaseClaim, type LeasePolicy } from './store';

export interface WriterInit {
  storePath: string;
  relayPrivateKey: Uint8Array;
  dedupKey: Uint8Array;
}

export type WriterRequest =
  /** `routingVersion`: the routing the parts were split under (null: not checked). */
  | { t: 'commit'; id: number; parts: TenantPart[]; receivedAt: number; routingVersion: number | null }
  | { t: 'ack'; id: number; applianceId: string; seqs: number[] }
  | { t: 'expire'; id: number; before: number }
  | { t: 'touch'; id: number; applianceIds: string[]; at: number }
  | { t: 'probe'; id: number }
  | { t: 'upgrade'; id: number; applianceId: string; nonce: string; expiresAt: number; envelopeVersion?: number }
  | { t: 'claim'; id: number; applianceId: string; holder: string; instance: string; now: number; policy: LeasePolicy }
  | { t: 'release'; id: number; applianceId: string; holder: string }
  | { t: 'renew'; id: number; instance: string; now: number };

/** A commit's answer when the numbers changed after its parts were routed: nothing was written. */
export const ROUTING_CHANGED = 'routing_changed';

/** What the main thread posts: every request of one event-loop turn, or the order to stop. */
export type WriterMessage = { t: 'requests'; requests: WriterRequest[] } | { t: 'close' };

export type WriterResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

/** `messages`: how many of the main thread's messages this group answered (see `MAX_MESSAGES_IN_FLIGHT`). */
export type WriterResponse = { t: 'ready' } | { t: 'results'; results: WriterResult[]; messages: number; commits: number; seconds: number };

export interface QueueWriter {
  ready: Promise<void>;
  /**
   * Resolves once the parts are sealed and durably committed (or recognised as duplicates);
   * rejects with `RoutingChanged`, writing nothing, if the routing version is no longer current.
   */
  commit(parts: TenantPart[], receivedAt: number, routingVersion: number | null): Promise<PartOutcome[]>;
  /** Deletes acknowledged envelopes; resolves with which seqs existed. */
  ack(applianceId: string, seqs: number[]): Promise<boolean[]>;
  expire(before: number): Promise<[string, number][]>;
  touch(applianceIds: string[], at: number): void;
  /** Records an upgrade nonce (false: replayed) and reads the identity's hold-off. */
  upgrade(applianceId: string, nonce: string, expiresAt: number, envelopeVersion?: number): Promise<{ fresh: boolean; conflictUntil: number }>;
  claim(applianceId: string, holder: string, instance: string, now: number, policy: LeasePolicy): Promise<LeaseClaim>;
  release(applianceId: string, holder: string): Promise<void>;
  renew(instance: string, now: number): Promise<void>;
  /** An empty write transaction on the writer's connection: resolves if the database takes writes. */
  probe(): Promise<void>;
  /** False once the writer thread died; the relay then answers 503 and reports not ready. */
  healthy(): boolean;
  /** Lets queued writes finish, then stops the thread. */
  close(): Promise<void>;
}

const CHECKPOINT_INTERVAL_MS = 500;
const MAX_MESSAGES_IN_FLIGHT = 2;

/**
 * Copies WAL pages into the database file (and fsyncs it) off the writer thread, so commits never
 * stall behind a checkpoint; PASSIVE never blocks the writer. Answers 'ready' once open.
 */
const CHECKPOINTER_SOURCE = `
  const { parentPort, workerData } = require('node:worker_threads');
  const Database = require('better-sqlite3');
  const db = new Database(workerData.storePath);
  db.pragma('busy_timeout = 5000');
  const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
  const timer = setInterval(checkpoint, workerData.intervalMs);
  parentPort.on('message', () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
  parentPort.postMessage({ t: 'ready' });
`;

function workerEntry(): { source: string | URL; eval: boolean } {
  const url = new URL(import.meta.url.endsWith('.ts') ? './queueWriterWorker.ts' : './queueWriterWorker.js', import.meta.url);
  // Under tsx (how the relay runs), worker threads do not inherit the TypeScript loader; register
  // it inside the worker before importing the entry.
  if (url.pathname.endsWith('.ts')) {
    return { source: `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`, eval: true };
  }
  return { source: url, eval: false };
}

export function createQueueWriter(init: WriterInit, hooks: { onBatch?: (size: number, seconds: number) => void; onFatal?: (err: Error) => void } = {}): QueueWriter {
  const entry = workerEntry();
  // A small young generation: the writer allocates little per commit, and each isolate's default
  // semi-spaces would otherwise stay resident.
  const worker = new Worker(entry.source, { eval: entry.eval, workerData: { ...init, role: 'writer' }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  // Checkpoints run on a thread of their own so no commit waits behind one. It needs only
  // better-sqlite3: plain JavaScript, no TypeScript loader and none of the relay's modules, so the
  // thread costs a few MB rather than a second copy of the writer.
  const checkpointer = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: { storePath: init.storePath, intervalMs: CHECKPOINT_INTERVAL_MS },
    resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
  });
  checkpointer.on('error', (err) => hooks.onFatal?.(err));
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let alive = true;
  let closing = false;
  let markReady: () => void = () => undefined;
  let failReady: (e: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });

  const die = (err: Error) => {
    if (!alive) return;
    alive = false;
    failReady(err);
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
    if (!closing) hooks.onFatal?.(err);
  };

  worker.on('message', (msg: WriterResponse) => {
    if (msg.t === 'ready') return markReady();
    for (const r of msg.results) {
      const w = waiting.get(r.id);
      if (!w) continue;
      waiting.delete(r.id);
      if (r.ok) w.resolve(r.value);
      else w.reject(new Error(r.message));
    }
    inFlight -= msg.messages;
    post();
    hooks.onBatch?.(msg.commits, msg.seconds);
  });
  worker.on('error', (err) => die(err));
  worker.on('exit', (code) => die(new Error(`queue writer exited (${code})`)));

  // Requests go to the writer thread at once while it has little to do, and otherwise wait here
  // until it reports a group done, then travel together: each message costs a structured clone and
  // a wake-up of the writer thread, which took a tenth of this thread's time at one message per
  // webhook, while a request held back from an idle writer would only wait. Two messages may be
  // in flight, so the writer has the next group in hand when it finishes a commit.
  let outbox: WriterRequest[] = [];
  let outboxTransfer: ArrayBuffer[] = [];
  let inFlight = 0;
  const post = () => {
    if (outbox.length === 0 || !alive) return;
    inFlight += 1;
    const requests = outbox;
    const transfer = outboxTransfer;
    outbox = [];
    outboxTransfer = [];
    try {
      worker.postMessage({ t: 'requests', requests } satisfies WriterMessage, transfer);
    } catch (err) {
      // Nothing reached the writer (a plaintext already handed over cannot be cloned again, say):
      // the group's requests fail here, so none waits for ever and close() still drains. A webhook
      // among them is answered with an error, and Meta sends it again.
      inFlight -= 1;
      for (const r of requests) {
        const w = waiting.get(r.id);
        waiting.delete(r.id);
        w?.reject(err instanceof Error ? err : new Error('queue writer hand-off failed'));
      }
      post();
    }
  };
  // Each request is built with its id (`make`): spreading an id-less object into a new one took
  // V8's slow property path on every webhook.
  const request = <T>(make: (id: number) => WriterRequest, transfer: ArrayBuffer[] = []): Promise<T> => {
    if (!alive || closing) return Promise.reject(new Error('queue writer unavailable'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      outbox.push(make(id));
      for (const b of transfer) outboxTransfer.push(b);
      if (inFlight < MAX_MESSAGES_IN_FLIGHT) post();
    });
  };

  return {
    ready,
    // The plaintexts move to the writer thread (each has its own ArrayBuffer): no copy, and this
    // thread does not need them after the commit.
    commit: (parts, receivedAt, routingVersion) =>
      // A plaintext handed over before is detached (empty). Node drops a message whose transfer
      // list holds a detached buffer without a word, so that request would wait for ever; and an
      // empty plaintext is never a webhook's.
      parts.some((p) => p.plaintext.byteLength === 0)
        ? Promise.reject(new Error('a part’s plaintext is empty or was already handed to the queue writer'))
        : request<PartOutcome[] | typeof ROUTING_CHANGED>((id) => ({ t: 'commit', id, parts, receivedAt, routingVersion }), parts.map((p) => p.plaintext.buffer as ArrayBuffer)).then(
        (outcomes) => {
          if (outcomes === ROUTING_CHANGED) throw new RoutingChanged();
          return outcomes;
        },
      ),
    ack: (applianceId, seqs) => request<boolean[]>((id) => ({ t: 'ack', id, applianceId, seqs })),
    expire: (before) => request<[string, number][]>((id) => ({ t: 'expire', id, before })),
    touch(applianceIds, at) {
      request((id) => ({ t: 'touch', id, applianceIds, at })).catch(() => undefined);
    },
    probe: () => request<void>((id) => ({ t: 'probe', id })),
    upgrade: (applianceId, nonce, expiresAt, envelopeVersion) => request((id) => ({ t: 'upgrade', id, applianceId, nonce, expiresAt, envelopeVersion })),
    claim: (applianceId, holder, instance, now, policy) => request((id) => ({ t: 'claim', id, applianceId, holder, instance, now, policy })),
    release: (applianceId, holder) => request((id) => ({ t: 'release', id, applianceId, holder })),
    renew: (instance, now) => request((id) => ({ t: 'renew', id, instance, now })),
    healthy: () => alive,
    async close() {
      if (!alive) return;
      const drained = Promise.allSettled([...waiting.values()].map((w) => new Promise((r) => {
        const { resolve, reject } = w;
        w.resolve = (v) => (resolve(v), r(null));
        w.reject = (e) => (reject(e), r(null));
      })));
      closing = true;
      await drained;
      const exited = new Promise((r) => worker.once('exit', r));
      worker.postMessage({ t: 'close' });
      await exited;
      const checkpointerExited = new Promise((r) => checkpointer.once('exit', r));
      checkpointer.postMessage({ t: 'close' });
      await checkpointerExited;
    },
  };
}
