import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import { createCore } from '../electron/core/createCore';
import { call, quietLogger, RECEPTION, relayWithPairedFolder, waitFor } from './helpers';

const PHONE = '110000000000001';
const BACKLOG = 10_000;
const CONCURRENCY = 16;

describe('an appliance that was offline catches up', () => {
  let relay: RelayProcess;
  let fixture: Awaited<ReturnType<typeof relayWithPairedFolder>>;

  beforeAll(async () => {
    // Paired on Friday, then the desk PC is switched off for the weekend.
    fixture = await relayWithPairedFolder('clinic-a', [PHONE]);
    relay = fixture.relay;
  });
  afterAll(() => fixture?.stop());

  it(`receives a ${BACKLOG.toLocaleString('en')}-message backlog exactly once`, async () => {
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < BACKLOG) {
          const i = next++;
          const body = batchWebhook([
            textMessageChange({
              phoneNumberId: PHONE,
              wamid: `wamid.BACKLOG-${i}`,
              text: `Wochenende ${i}`,
              from: `49151${String(i % 500).padStart(7, '0')}`,
              name: `Patient ${i % 500}`,
              timestamp: 1760000000 + i,
            }),
          ]);
          statuses.push((await relay.postWebhook(body)).status);
        }
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(BACKLOG);
    expect(relay.queued('clinic-a')).toBe(BACKLOG);

    // Monday morning: the core starts and the relay says how much is waiting.
    const core = await createCore({ dataDir: fixture.dataDir, logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' } });
    try {
      const firstBacklog = await waitFor('backlog reported', () => core.relayStatus().backlog ?? undefined);
      expect(firstBacklog.queued).toBeGreaterThan(0);
      await waitFor('backlog delivered', () => relay.queued('clinic-a') === 0, 120_000);
      const db = (await call(core, RECEPTION, 'search.messages', { query: 'Wochenende', limit: 1 })).items;
      expect(db).toHaveLength(1);
      const inbox = await call(core, RECEPTION, 'inbox.listConversations', { limit: 200 });
      expect(inbox.items).toHaveLength(200);
      expect(inbox.nextCursor).not.toBeNull();
      // Every wamid once: count through the thread pages of all 500 conversations.
      let total = 0;
      let cursor: string | undefined;
      do {
        const page = await call(core, RECEPTION, 'inbox.listConversations', { limit: 200, ...(cursor ? { cursor } : {}) });
        for (const c of page.items) total += c.unreadCount;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(total).toBe(BACKLOG);
    } finally {
      await core.close();
    }
  }, 240_000);
});
