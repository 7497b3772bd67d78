/**
 * A token bucket per client IP for traffic that carries no valid signature (handshakes, enrolment,
 * failed webhooks, failed upgrades). Meta's correctly signed posts never spend tokens, so an
 * attacker hammering from one address cannot slow the real webhooks down.
 */
export interface RateLimiter {
  /** Whether this IP still has a token (does not spend one). */
  allowed(ip: string): boolean;
  /** Spends one token. */
  take(ip: string): void;
}

export function createRateLimiter(opts: { ratePerMinute: number; burst: number; now: () => number; maxTracked?: number }): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = opts.ratePerMinute / 60_000;
  const maxTracked = opts.maxTracked ?? 100_000;

  const refill = (ip: string) => {
    const t = opts.now();
    const b = buckets.get(ip);
    if (!b) return { tokens: opts.burst, at: t };
    return { tokens: Math.min(opts.burst, b.tokens + (t - b.at) * perMs), at: t };
  };

  return {
    allowed(ip) {
      return refill(ip).tokens >= 1;
    },
    take(ip) {
      const b = refill(ip);
      b.tokens = Math.max(0, b.tokens - 1);
      if (buckets.size >= maxTracked && !buckets.has(ip)) {
        // Bounded memory: forget buckets that have refilled completely (they hold no information).
        for (const [k, v] of buckets) if (refill(k).tokens >= opts.burst || v.at < opts.now() - 3_600_000) buckets.delete(k);
        if (buckets.size >= maxTracked) buckets.delete(buckets.keys().next().value!);
      }
      buckets.set(ip, b);
    },
  };
}
