// Events about what the relay delivered, through the real path: a signed batch webhook at a real
// relay, the sealed envelope over the link, the core's ingest transaction (which queues the
// batch's events in the same commit) and the events worker delivering to a local HTTPS
// subscriber. Each stored message reaches the subscriber once, in order per
// conversation, with the ids the desk shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import type { CoreHandle } from '../electron/core/createCore';
import { startEventSubscriber, type EventSubscriber } from '../electron/core/testing/eventSubscriber';
import { ADMIN, call, RECEPTION, startPairedCore, waitFor } from './helpers';

const PHONE = '110000000000001';

describe('events for a batch the relay delivered', () => {
  let relay: RelayProcess;
  let core: CoreHandle;
  let sub: EventSubscriber;

  beforeAll(async () => {
    sub = await startEventSubscriber();
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: [PHONE] });
    core = await startPairedCore(relay, 'clinic-a', { events: { ca: sub.cert } });
  }, 60_000);
  afterAll(async () => {
    await core?.close();
    await relay?.stop();
    await sub?.close();
  });

  it('sends one signed event per stored message, in order per conversation, with the ids the desk shows', async () => {
    const { secret } = await call(core, ADMIN, 'events.create', { url: sub.url, events: ['message.received'] });
    const anna = { phoneNumberId: PHONE, from: '15555550101', name: 'Anna' };
    const ben = { phoneNumberId: PHONE, from: '15555550102', name: 'Ben' };
    const body = batchWebhook([
      textMessageChange({ ...anna, wamid: 'wamid.EV-A1', text: 'Eins', timestamp: 1760000001 }),
      textMessageChange({ ...ben, wamid: 'wamid.EV-B1', text: 'Zwei', timestamp: 1760000002 }),
      textMessageChange({ ...anna, wamid: 'wamid.EV-A2', text: 'Drei', timestamp: 1760000003 }),
      textMessageChange({ ...anna, wamid: 'wamid.EV-A3', text: 'Vier', timestamp: 1760000004 }),
    ]);
    expect((await relay.postWebhook(JSON.stringify(body))).status).toBe(200);
    await waitFor('batch stored', async () => (await call(core, RECEPTION, 'inbox.listConversations', {})).items.length === 2);
    await waitFor('all events delivered', async () => {
      await core.events.deliverNow();
      return sub.received.length >= 4;
    });

    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    const idsOf = async (name: string) => {
      const conversation = inbox.items.find((c) => c.contact.displayName === name)!;
      const thread = await call(core, RECEPTION, 'messages.list', { conversationId: conversation.id });
      // The thread lists newest first; the patient wrote them oldest first.
      return { conversationId: conversation.id, messageIds: thread.items.map((m) => m.id).reverse() };
    };
    const a = await idsOf('Anna');
    const b = await idsOf('Ben');
    expect(a.messageIds).toHaveLength(3);

    const received = sub.received.map((e) => e.body);
    for (const e of sub.received) expect(sub.verifies(e, secret)).toBe(true);
    expect(received.every((e) => e.type === 'message.received')).toBe(true);
    const deliveredFor = (conversationId: number) => received.filter((e) => e.conversationId === conversationId).map((e) => e.data.messageId);
    // Order per conversation is the patient's order; every message once, none twice.
    expect(deliveredFor(a.conversationId)).toEqual(a.messageIds);
    expect(deliveredFor(b.conversationId)).toEqual(b.messageIds);
    expect(new Set(received.map((e) => e.id)).size).toBe(received.length);
    // No text unless the admin allowed it.
    expect(sub.received.map((e) => e.raw.toString()).join('\n')).not.toMatch(/Eins|Zwei|Drei|Vier|15555550101/);
  }, 60_000);
});
