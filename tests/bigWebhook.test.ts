import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, metaJson, textMessageChange, textMessageWebhook } from '../relay/testing/signWebhook';
import type { CoreHandle } from '../electron/core/createCore';
import { MAX_DELIVER_FRAME_BYTES } from '../shared/wire';
import { call, RECEPTION, startPairedCore, waitFor } from './helpers';

/**
 * A batch just under the relay's default body cap (5 MiB) goes through a real relay into a real
 * core. Sealed and framed it is ~8.7 MB, more than the 8 MiB the appliance used to accept: its
 * socket closed (1009) on that frame, the same seq came first on every reconnect, and nothing
 * behind it arrived until it expired.
 */
const PHONE = '110000000000077';
const PATIENTS = 20;
const MESSAGES = 1_000; // Meta's most updates in one batch
const TEXT_CHARS = 4_096; // and the longest text message

/** 4,096 characters, some of them umlauts (six bytes each as Meta escapes them), different per message. */
function longText(i: number): string {
  const head = `Nachricht ${i}: `;
  const umlauts = 'äöü'.repeat(32);
  return (head + umlauts + 'Termin bitte verschieben, danke. '.repeat(200)).slice(0, TEXT_CHARS);
}

describe('a batch near the body cap through a real relay into the core', () => {
  let relay: RelayProcess;
  let core: CoreHandle;

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-big', phoneNumberIds: [PHONE] });
    core = await startPairedCore(relay, 'clinic-big');
  });
  afterAll(async () => {
    await core?.close();
    await relay?.stop();
  });

  it('is accepted, reaches the database whole, and the webhook after it arrives too', async () => {
    const changes = Array.from({ length: MESSAGES }, (_, i) =>
      textMessageChange({
        phoneNumberId: PHONE,
        wamid: `wamid.BIG-${String(i).padStart(4, '0')}`,
        text: longText(i),
        from: String(4_915_550_000_000 + (i % PATIENTS)),
        name: `Patient ${i % PATIENTS}`,
        timestamp: 1_760_000_000 + i,
      }),
    );
    const body = metaJson(batchWebhook(changes));
    const bytes = Buffer.byteLength(body);
    expect(bytes).toBeGreaterThan(4.8e6);
    expect(bytes).toBeLessThan(5 * 1024 * 1024);
    // Sealed as Meta sent it: base64url inside the plaintext, base64url again in the frame.
    const frameBytes = Math.ceil((Math.ceil((bytes * 4) / 3) * 4) / 3);
    expect(frameBytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(frameBytes).toBeLessThan(MAX_DELIVER_FRAME_BYTES);

    expect((await relay.postWebhook(body)).status).toBe(200);
    const small = textMessageWebhook({ phoneNumberId: PHONE, wamid: 'wamid.AFTER-BIG', text: 'Und noch eine kurze Frage', from: '491555000099', name: 'Nach' });
    expect((await relay.postWebhook(metaJson(small))).status).toBe(200);

    const inbox = await waitFor(
      'all messages stored',
      async () => {
        const r = await call(core, RECEPTION, 'inbox.listConversations', { limit: 50 });
        return r.items.reduce((n, c) => n + c.unreadCount, 0) === MESSAGES + 1 ? r : undefined;
      },
      60_000,
    );
    expect(inbox.items).toHaveLength(PATIENTS + 1);
    expect(inbox.unreadTotal).toBe(PATIENTS + 1);
    const last = inbox.items.find((c) => c.contact.waId === String(4_915_550_000_000 + ((MESSAGES - 1) % PATIENTS)))!;
    const thread = await call(core, RECEPTION, 'messages.list', { conversationId: last.id, limit: 1 });
    expect(thread.items[0]!.text).toBe(longText(MESSAGES - 1));
    const after = inbox.items.find((c) => c.contact.waId === '491555000099')!;
    expect((await call(core, RECEPTION, 'messages.list', { conversationId: after.id })).items.map((m) => m.text)).toEqual(['Und noch eine kurze Frage']);
    await waitFor('relay queue drained', () => relay.queued('clinic-big') === 0);
    expect(core.relayStatus().state).toBe('connected');
  }, 90_000);
});
