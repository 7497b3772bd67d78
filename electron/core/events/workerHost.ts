// The core's side of the events worker thread: starts it, wakes it, asks it to drain, starts it
// again when it dies (what it was sending stays pending in the database and goes again), and
// stops it with the core.
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import { startWorkerThread } from '../workerThread';
import type { EventsWorkerData, FromWorker, ToWorker } from './eventsWorker';

/** A worker that died is started again after this, doubling up to the cap while it keeps dying early. */
const RESTART_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A run this long counts as healthy: the next restart starts from `RESTART_MS` again. */
const HEALTHY_MS = 60_000;
/** How long a stop waits for the worker to write what it recorded before it is terminated. */
const STOP_GRACE_MS = 5_000;

export interface EventsWorker {
  kick(now: number): void;
  /** Passes until one delivers nothing; resolves with how many were delivered. Survives a restart. */
  drain(now: number): Promise<number>;
  /** Terminates the thread abruptly, as a crash would (tests). */
  crash(): Promise<void>;
  stop(): Promise<void>;
  /** How many times the thread was started again after dying. */
  readonly restarts: number;
}

export function startEventsWorker(options: { data: Omit<EventsWorkerData, 'now'>; logger: Logger; now: () => number }): EventsWorker {
  const { logger: log, now } = options;
  let thread: Worker | null = null;
  let stopping = false;
  let restarts = 0;
  let delay = RESTART_MS;
  let restartTimer: NodeJS.Timeout | null = null;
  let nextDrain = 1;
  const drains = new Map<number, { resolve(sent: number): void; reject(err: Error): void }>();

  const post = (m: ToWorker) => thread?.postMessage(m);

  function spawn(): void {
    const startedAt = performance.now();
    const w = startWorkerThread(import.meta.url, './eventsWorker', { workerData: { ...options.data, now: now() } satisfies EventsWorkerData });
    thread = w;
    w.on('message', (m: FromWorker) => {
      if (m.kind === 'drained') {
        drains.get(m.id)?.resolve(m.sent);
        drains.delete(m.id);
      } else if (m.kind === 'log') log[m.level](m.fields, m.message);
      else if (m.kind === 'ready') {
        if (m.background.kind === 'thread') log.debug({ tid: m.background.tid, nice: m.background.priority }, 'events worker runs at background priority');
        else log.info({ why: m.background.why }, 'events worker runs at normal priority');
      }
    });
    // Its class only: a worker's error may quote what it was handling.
    w.on('error', (err) => log.error({ err: err.name }, 'events worker failed'));
    w.on('exit', (code) => {
      if (thread === w) thread = null;
      if (stopping) return;
      restarts++;
      delay = performance.now() - startedAt > HEALTHY_MS ? RESTART_MS : Math.min(RESTART_MAX_MS, delay * 2);
      log.warn({ code, restartInMs: delay }, 'events worker stopped; starting it again');
      restartTimer = setTimeout(() => {
        restartTimer = null;
        if (stopping) return;
        spawn();
        // What was asked of the one that died is asked again; the rows it was sending are still pending.
        for (const id of drains.keys()) post({ kind: 'drain', id, now: now() });
        post({ kind: 'kick', now: now() });
      }, delay);
      restartTimer.unref();
    });
  }
  spawn();
  delay = RESTART_MS / 2; // the first restart waits RESTART_MS

  return {
    kick: (at) => post({ kind: 'kick', now: at }),
    drain(at) {
      const id = nextDrain++;
      return new Promise<number>((resolve, reject) => {
        drains.set(id, { resolve, reject });
        post({ kind: 'drain', id, now: at });
      });
    },
    async crash() {
      await thread?.terminate();
    },
    async stop() {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      for (const d of drains.values()) d.reject(new CodedError('UNAVAILABLE', 'Event delivery stopped before it finished.'));
      drains.clear();
      const w = thread;
      thread = null;
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.postMessage({ kind: 'stop' } satisfies ToWorker);
      const grace = setTimeout(() => void w.terminate(), STOP_GRACE_MS);
      await exited;
      clearTimeout(grace);
    },
    get restarts() {
      return restarts;
    },
  };
}
