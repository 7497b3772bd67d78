import { describe, expect, it } from 'vitest';
import { createHoldSizer } from './holdSizer';

// Batches aimed at 10 ms, starting at 0.1 ms per row: 100 rows.
const sizer = () => createHoldSizer({ aimMs: 10, perUnitMs: 0.1, min: 1, max: 5_000, growth: 1.5, release: 0.3 });

describe('the hold sizer', () => {
  it('cuts the next hold to fit the aim right after a slow one, whatever the holds before it cost', () => {
    const s = sizer();
    for (let i = 0; i < 20; i += 1) s.observe(s.size(), s.size() * 0.1);
    expect(s.size()).toBe(100);
    // One batch of 100 rows held the lock 60 ms (a patient's long messages, or the thread waited
    // for a core): 0.6 ms a row, so the next batch fits 10 ms at that cost.
    s.observe(100, 60);
    expect(s.size()).toBe(16);
  });

  it('after a slow hold, grows back by at most half again per hold, and only as far as the cheaper rows allow', () => {
    const s = sizer();
    s.observe(100, 60);
    const sizes: number[] = [];
    for (let i = 0; i < 30; i += 1) {
      s.observe(s.size(), s.size() * 0.1);
      sizes.push(s.size());
    }
    for (let i = 1; i < sizes.length; i += 1) expect(sizes[i]!).toBeLessThanOrEqual(Math.ceil(sizes[i - 1]! * 1.5));
    expect(sizes[0]).toBeLessThan(30);
    expect(sizes.at(-1)).toBeGreaterThanOrEqual(98);
    expect(sizes.at(-1)).toBeLessThanOrEqual(100);
  });

  it('a cheap stretch does not jump to a huge hold: growth is bounded even when rows cost nearly nothing', () => {
    const s = createHoldSizer({ aimMs: 10, perUnitMs: 0.1, min: 1, max: 5_000, growth: 1.5, release: 1 });
    s.observe(100, 0.01);
    expect(s.size()).toBe(150);
    s.observe(150, 0.01);
    expect(s.size()).toBe(225);
  });

  it('stays within its bounds and ignores a hold that did no work', () => {
    const s = sizer();
    s.observe(1, 500);
    expect(s.size()).toBe(1);
    s.observe(0, 0);
    expect(s.size()).toBe(1);
    const big = createHoldSizer({ aimMs: 10, perUnitMs: 1e-6, min: 4, max: 2_000, growth: 1.5, release: 0.5 });
    expect(big.size()).toBe(2_000);
  });
});
