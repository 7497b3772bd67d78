// The events worker's writes wait for the gap after one of the core's ingest commits while the core
// is ingesting, and never wait while it is not.
import { describe, expect, it } from 'vitest';
import { createIngestSignal, QUIET_MS, SLOT_WAIT_MS, watchIngest, writeSlots } from './ingestSignal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function took(p: Promise<void>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

describe('write slots between ingest commits', () => {
  it('lets a write go at once while the core is not ingesting', async () => {
    const signal = createIngestSignal();
    const slot = writeSlots(signal.buffer);
    expect(await took(slot())).toBeLessThan(20);
  });

  it('holds a write until the core’s next commit while it ingests, and no longer than the cap when ingest ended', async () => {
    const signal = createIngestSignal();
    const slot = writeSlots(signal.buffer);
    signal.committed();
    // The core just committed: the worker waits for the end of its next commit.
    const next = setTimeout(() => signal.committed(), 40);
    const waited = await took(slot());
    clearTimeout(next);
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(SLOT_WAIT_MS);

    // No further commit: the write goes after the cap, and the one after it at once.
    await sleep(10);
    const capped = await took(slot());
    expect(capped).toBeGreaterThanOrEqual(SLOT_WAIT_MS - 5);
    expect(await took(slot())).toBeLessThan(20);
  });

  it('tells the worker the core is ingesting from its first commit until QUIET_MS after its last', async () => {
    const signal = createIngestSignal();
    const watch = watchIngest(signal.buffer);
    expect(watch.ingesting()).toBe(false);
    signal.committed();
    expect(watch.ingesting()).toBe(true);
    await sleep(QUIET_MS + 20);
    expect(watch.ingesting()).toBe(false);
  });
});
