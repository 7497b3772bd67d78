// Ingest and the events worker share SQLite's one write lock. A commit of the core that finds the
// worker holding it sleeps in SQLite's busy handler (1 ms at least, then 2, 5, 10 …), and a worker
// at background priority can be descheduled while it holds it. So the core counts its ingest
// commits in shared memory and wakes the worker after each; while the core is ingesting, the
// worker starts each of its short write transactions right after one of those commits, in the
// gap while the core reads and opens its next batch, instead of at a random moment.

/** No commit for this long: the core is not ingesting, and the worker writes at once. */
export const QUIET_MS = 50;
/** The longest a write waits for the core's next commit (a backlog that just ended). */
export const SLOT_WAIT_MS = 100;

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs: number) => { async: false; value: string } | { async: true; value: Promise<string> };

/** The core's side: one counter in shared memory, bumped and notified after each ingest commit. */
export function createIngestSignal(): { buffer: SharedArrayBuffer; committed(): void } {
  const buffer = new SharedArrayBuffer(4);
  const counter = new Int32Array(buffer);
  return {
    buffer,
    committed() {
      Atomics.add(counter, 0, 1);
      Atomics.notify(counter, 0);
    },
  };
}

/** The worker's view of the core's ingest: whether it is going on, and when a write is least in its way. */
export interface IngestWatch {
  /** A commit came within `QUIET_MS`: the core is working through a backlog. */
  ingesting(): boolean;
  /** Resolves when the next write transaction is least in the way of ingest. */
  slot(): Promise<void>;
}

export function watchIngest(buffer: SharedArrayBuffer, clock: () => number = () => performance.now()): IngestWatch {
  const counter = new Int32Array(buffer);
  const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
  let seen = Atomics.load(counter, 0);
  let changedAt = -Infinity;
  const look = (): number => {
    const n = Atomics.load(counter, 0);
    if (n !== seen) {
      seen = n;
      changedAt = clock();
    }
    return n;
  };
  return {
    ingesting() {
      look();
      return clock() - changedAt <= QUIET_MS;
    },
    async slot() {
      const n = look();
      if (clock() - changedAt > QUIET_MS) return;
      const wait = waitAsync(counter, 0, n, SLOT_WAIT_MS);
      if (wait.async) await wait.value;
      // Timed out without a commit: the backlog ended, and the next write need not wait.
      look();
    },
  };
}

/** The worker's side: resolves when its next write transaction is least in the way of ingest. */
export function writeSlots(buffer: SharedArrayBuffer, clock?: () => number): () => Promise<void> {
  return watchIngest(buffer, clock).slot;
}
