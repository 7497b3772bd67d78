/**
 * How much work the next hold of the write lock takes (the rows of a retention batch, the pages of
 * an index merge step), from what the previous holds cost on the wall clock, the clock an inbox
 * query waiting behind the lock sees.
 *
 * A running average let one expensive hold be followed by another as large: on the 1,000,000-message
 * clinic a batch held the lock 60.7 ms with 35 ms of CPU, and index merge steps aimed at 10 ms
 * took up to 48 ms of CPU, because the cost per unit changes from one conversation or index level
 * to the next and because the thread is sometimes kept off the CPU inside a hold (measured per
 * thread in `bench/privacy.bench.ts`: waiting for a core, or the host's steal; never blocked on
 * the disk). So:
 * - a hold that cost more per unit than estimated sets the estimate at once, and the next hold is
 *   cut to fit the aim at that cost;
 * - a cheaper one lowers the estimate only partly (`release`), and the size grows by at most
 *   `growth` per hold, so a cheap stretch does not lead straight into a large expensive hold.
 */
export interface HoldSizer {
  /** The units the next hold may take. */
  size(): number;
  /** What the last hold did: `units` of work in `ms` (wall clock, BEGIN to COMMIT done). */
  observe(units: number, ms: number): void;
}

export interface HoldSizerOptions {
  /** The wall time a hold aims at (ms): a share of the budget, leaving room for the estimate's errors. */
  aimMs: number;
  /** The estimate before anything was measured (ms per unit). */
  perUnitMs: number;
  min: number;
  max: number;
  /** Most the size may grow from one hold to the next (factor). */
  growth: number;
  /** How far a cheaper hold moves the estimate toward its own cost (0–1). */
  release: number;
}

export function createHoldSizer(o: HoldSizerOptions): HoldSizer {
  let perUnitMs = o.perUnitMs;
  const fit = () => Math.floor(o.aimMs / perUnitMs);
  let size = Math.max(o.min, Math.min(o.max, fit()));
  return {
    size: () => size,
    observe(units, ms) {
      if (units <= 0) return;
      const cost = ms / units;
      perUnitMs = cost > perUnitMs ? cost : perUnitMs * (1 - o.release) + cost * o.release;
      size = Math.max(o.min, Math.min(o.max, Math.ceil(size * o.growth), fit()));
    },
  };
}
