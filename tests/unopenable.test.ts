// An envelope the appliance cannot open (damaged at the relay, sealed for other keys) is shelved as
// it came — still encrypted — and acked, so it neither blocks the deliveries behind it nor fills the
// relay's delivery window for two weeks.
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textMessageWebhook } from '../relay/testing/signWebhook';
import { createCore, type CoreHandle } from '../electron/core/createCore';
import { openCoreStore } from '../electron/core/db/coreStore';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { call, quietLogger, RECEPTION, relayWithPairedFolder, waitFor } from './helpers';

const PHONE = '110000000000001';

describe('an envelope that does not open', () => {
  let fixture: Awaited<ReturnType<typeof relayWithPairedFolder>>;
  let core: CoreHandle | null = null;

  beforeAll(async () => {
    fixture = await relayWithPairedFolder('clinic-a', [PHONE]);
  });
  afterAll(async () => {
    await core?.close();
    await fixture?.stop();
  });

  it('is shelved encrypted and acked, and the messages around it arrive', async () => {
    const { relay } = fixture;
    const texts = ['Erste Nachricht', 'Beschädigt unterwegs', 'Dritte Nachricht'];
    for (const [i, text] of texts.entries()) {
      const res = await relay.postWebhook(textMessageWebhook({ phoneNumberId: PHONE, wamid: `wamid.OPEN-${i}`, text, from: '15555550123', timestamp: 1760000000 + i }));
      expect(res.status).toBe(200);
    }
    expect(relay.queued('clinic-a')).toBe(3);
    // Damage the middle envelope's ciphertext in the relay's queue (one flipped bit).
    const db = new Sqlite(join(relay.dataDir, 'relay.sqlite'));
    try {
      const rows = db.prepare('SELECT appliance_id, seq, ct FROM envelopes ORDER BY seq').all() as { appliance_id: string; seq: number; ct: Buffer }[];
      const middle = rows[1]!;
      middle.ct[middle.ct.length - 1]! ^= 1;
      db.prepare('UPDATE envelopes SET ct = ? WHERE appliance_id = ? AND seq = ?').run(middle.ct, middle.appliance_id, middle.seq);
    } finally {
      db.close();
    }

    core = await createCore({ dataDir: fixture.dataDir, logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' } });
    await waitFor('the relay queue drained', () => relay.queued('clinic-a') === 0, 15_000);
    const page = await call(core, RECEPTION, 'inbox.listConversations', {});
    const thread = await call(core, RECEPTION, 'messages.list', { conversationId: page.items[0]!.id });
    expect(thread.items.map((m) => m.text).sort()).toEqual(['Dritte Nachricht', 'Erste Nachricht']);
    await core.close();
    core = null;

    const store = await openCoreStore({ dataDir: fixture.dataDir, secrets: await createKeytarSecretStore(), logger: quietLogger() });
    try {
      const shelved = store.db.prepare('SELECT relay_seq, reason, payload FROM dead_letters').all() as { relay_seq: number; reason: string; payload: string }[];
      expect(shelved).toHaveLength(1);
      expect(shelved[0]!.reason).toMatch(/^envelope could not be opened: /);
      // Kept as it came: ciphertext, nothing readable.
      expect(shelved[0]!.payload).not.toContain('Beschädigt');
      expect(JSON.parse(shelved[0]!.payload)).toHaveProperty('ct');
    } finally {
      store.close();
    }
  });
});
