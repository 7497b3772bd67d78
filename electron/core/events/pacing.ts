// While the core works through an ingest backlog, each subscriber gets its events at a steady
// `INGEST_PACE_PER_SECOND` instead of as fast as the worker can sign and send them. Every event
// costs CPU twice beyond ingest's own (the worker's TLS, HTTP and SQLite; the subscriber's, when it
// runs on this computer), and on a desk PC with two cores that CPU is taken from ingest (the last
// quiet measurement: ingest at 0.72 of its speed with a subscriber delivered to at full speed).
// Once no ingest commit came for `QUIET_MS` the pace is lifted and what waited goes at full speed.
// Nothing is skipped, batched or reordered: the pace only spaces the sends.

/** Events a second per subscriber while the core is ingesting: above the 1,000/s promised, with room. */
export const INGEST_PACE_PER_SECOND = 1_250;
/** How far ahead of the pace a burst may go (one event per lane in flight, so lanes never idle in turn). */
const BURST = 16;

export interface PacerOptions {
  /** Whether the core is ingesting now (`IngestWatch.ingesting`). */
  ingesting(): boolean;
  ratePerSecond?: number;
  burst?: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * One subscriber's pace: `await next()` before each send. A generic cell rate algorithm: each send
 * books the next free slot `1/rate` after the last one, and waits only when it booked more than
 * `burst` slots ahead. Outside ingest it never waits, and the booking starts afresh.
 */
export function createPacer(options: PacerOptions): { next(): Promise<void> | undefined } {
  const interval = 1000 / (options.ratePerSecond ?? INGEST_PACE_PER_SECOND);
  const ahead = (options.burst ?? BURST) * interval;
  const clock = options.clock ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let booked = -Infinity;
  return {
    next() {
      if (!options.ingesting()) {
        booked = -Infinity;
        return undefined;
      }
      const t = clock();
      const slot = Math.max(booked, t);
      booked = slot + interval;
      const wait = slot - t - ahead;
      return wait > 0 ? sleep(wait) : undefined;
    },
  };
}
