// While the core ingests, a subscriber gets its events at the pace (never slower, never a burst
// beyond one per lane); once ingest is over they go at once.
import { describe, expect, it } from 'vitest';
import { createPacer, INGEST_PACE_PER_SECOND } from './pacing';

/** Runs `events` sends through the pacer on a clock that moves only by the pacer's own waits. */
async function send(events: number, ingesting: () => boolean): Promise<number> {
  let t = 0;
  const pacer = createPacer({ ingesting, clock: () => t, sleep: async (ms) => void (t += ms) });
  for (let i = 0; i < events; i++) await pacer.next();
  return t;
}

describe('the pace of delivery during ingest', () => {
  it('keeps the pace over a second of ingest, above the 1,000 events/s promised', async () => {
    const ms = await send(INGEST_PACE_PER_SECOND * 2, () => true);
    const perSecond = (INGEST_PACE_PER_SECOND * 2) / (ms / 1000);
    expect(perSecond).toBeGreaterThan(1000);
    // Paced, not at full speed: the two seconds' worth took about two seconds.
    expect(ms).toBeGreaterThan(1900);
    expect(ms).toBeLessThanOrEqual(2000);
  });

  it('never waits while the core is not ingesting', async () => {
    expect(await send(10_000, () => false)).toBe(0);
  });

  it('lifts the pace the moment ingest ends, without owing the time it saved', async () => {
    let busy = true;
    let t = 0;
    const pacer = createPacer({ ingesting: () => busy, clock: () => t, sleep: async (ms) => void (t += ms) });
    for (let i = 0; i < 500; i++) await pacer.next();
    const paced = t;
    expect(paced).toBeGreaterThan(350);
    busy = false;
    for (let i = 0; i < 500; i++) await pacer.next();
    expect(t).toBe(paced);
    // Ingest starts again: a short burst goes at once, then the pace holds again.
    busy = true;
    for (let i = 0; i < 16; i++) await pacer.next();
    expect(t).toBe(paced);
    for (let i = 0; i < 100; i++) await pacer.next();
    expect(t - paced).toBeGreaterThan(60);
  });
});
