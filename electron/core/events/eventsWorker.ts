// The events worker thread: delivers what the core queued (`delivery.ts`) on a connection of its
// own, so signing, TLS, retries and the delivery log's writes never run on the core's thread.
// The core kicks it after each commit that queued events; it also wakes itself for retries.
import { parentPort, workerData } from 'node:worker_threads';
import { createSealer } from '../accounts/seal';
import { lowerThisThread, type BackgroundPlan } from './backgroundPriority';
import { watchIngest } from './ingestSignal';
import { openWorkerConnection } from '../db/cipher';
import { createDeliverer } from './delivery';
import { planExpansion, writeExpansion } from './outbox';
import { writeOutcomes } from './outcomes';

export interface EventsWorkerData {
  databasePath: string;
  /** The database key (hex), handed over in memory only. */
  databaseKey: string;
  /** Whether the core runs on the system clock; a test's clock reaches the worker with each message instead. */
  systemClock: boolean;
  /** Goes into every body. */
  installationId: string;
  now: number;
  ca?: string | string[] | undefined;
  retryWindowMs?: number | undefined;
  concurrency?: number | undefined;
  /** `Int32Array` [0]: how many ingest commits the core has made; it notifies after each (`ingestSignal.ts`). */
  ingestSignal: SharedArrayBuffer;
}

export type ToWorker = { kind: 'kick'; now: number } | { kind: 'drain'; id: number; now: number } | { kind: 'stop' };
export type FromWorker =
  | { kind: 'ready'; background: BackgroundPlan }
  | { kind: 'drained'; id: number; sent: number }
  | { kind: 'log'; level: 'warn' | 'error'; fields: Record<string, unknown>; message: string }
  | { kind: 'stopped' };

const data = workerData as EventsWorkerData;
// First, before any work: delivery must never take a CPU that ingest or the desk could use.
const background = lowerThisThread();
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

let clock = data.now;
const now = data.systemClock ? Date.now : () => clock;

// Only the delivery log is written here, and losing its latest lines to a power cut only means
// those events go again: no disk flush per commit (the core's next commit flushes the WAL).
const db = openWorkerConnection(data.databasePath, data.databaseKey, 'NORMAL');

// Our writes wait for the moment after one of the core's ingest commits, while it reads the next
// batch; our sends keep a steady pace while the core ingests (`pacing.ts`).
const ingest = watchIngest(data.ingestSignal);
const slot = ingest.slot;

const deliverer = createDeliverer({
  db,
  now,
  sealer: createSealer(Buffer.from(data.databaseKey, 'hex'), 'events'),
  ca: data.ca,
  retryWindowMs: data.retryWindowMs,
  concurrency: data.concurrency,
  ingesting: ingest.ingesting,
  warn: (fields, message) => send({ kind: 'log', level: 'warn', fields, message }),
  write: async (batch) => {
    await slot();
    writeOutcomes(db, [batch], now());
  },
  expand: async () => {
    // Short transactions, each in a gap between the core's commits, until the outbox is empty; the
    // rows are read and their bodies made before waiting for the gap, so only the inserts fill it.
    for (;;) {
      const plan = planExpansion(db, data.installationId);
      if (!plan) return;
      await slot();
      writeExpansion(db, plan, data.installationId);
    }
  },
});

let running: Promise<number> | null = null;
let again = false;
let stopping = false;
let timer: NodeJS.Timeout | null = null;
/** Drain requests answered when a pass sends nothing more. */
const drains: { id: number; sent: number }[] = [];

function schedule(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (stopping) return;
  if (again) return void (timer = setTimeout(run, 0));
  const due = deliverer.nextDueAt();
  if (due === null) return; // nothing waiting: the next kick wakes us
  timer = setTimeout(run, Math.max(50, Math.min(60_000, due - now())));
}

function run(): void {
  if (running) {
    again = true;
    return;
  }
  again = false;
  running = deliverer
    .pass()
    .catch((err: unknown) => {
      send({ kind: 'log', level: 'error', fields: { err: err instanceof Error ? err.name : 'error' }, message: 'events pass failed' });
      return 0;
    })
    .then((sent) => {
      running = null;
      for (const d of drains) d.sent += sent;
      if (sent > 0 && drains.length > 0) again = true;
      if (!again) for (const d of drains.splice(0)) send({ kind: 'drained', id: d.id, sent: d.sent });
      schedule();
      return sent;
    });
}

port.on('message', (m: ToWorker) => {
  if (m.kind === 'stop') {
    stopping = true;
    if (timer) clearTimeout(timer);
    deliverer.stop();
    void Promise.resolve(running).then(() => {
      db.close();
      send({ kind: 'stopped' });
      port.close();
    });
    return;
  }
  clock = m.now;
  if (m.kind === 'drain') drains.push({ id: m.id, sent: 0 });
  run();
});

send({ kind: 'ready', background });
