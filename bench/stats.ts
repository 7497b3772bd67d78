// What the benchmarks share: a deterministic random source, timing runs and their percentiles, the
// scheduler's account of a thread.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Deterministic (mulberry32), so two databases generated from one seed hold the same rows. */
export function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentiles(samples: number[]): { p50: number; p95: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), n: s.length };
}

/** `runs` timings of `fn` in ms, after a short warm-up. */
export function time(fn: () => unknown, runs: number): number[] {
  for (let i = 0; i < Math.min(20, runs); i += 1) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const t = performance.now();
    fn();
    out.push(performance.now() - t);
  }
  return out;
}

/**
 * A thread of this process in the scheduler's account (Linux `schedstat`; throws elsewhere): ms on a
 * CPU and ms runnable but waiting for one. `'self'` is the calling thread, a number a thread id
 * (the main thread's is the pid).
 */
export function schedstatMs(thread: number | 'self'): { runMs: number; waitMs: number } {
  const path = thread === 'self' ? '/proc/thread-self/schedstat' : `/proc/self/task/${thread}/schedstat`;
  const [run, wait] = readFileSync(path, 'utf8').split(' ').map(Number);
  return { runMs: (run ?? 0) / 1e6, waitMs: (wait ?? 0) / 1e6 };
}

/** CPU ms of every thread of another process (Linux; NaN elsewhere or once it is gone). */
export function processCpuMs(pid: number): number {
  try {
    let ms = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ms += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? 0) / 1e6;
    return ms;
  } catch {
    return NaN;
  }
}
