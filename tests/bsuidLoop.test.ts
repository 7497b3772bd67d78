import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayProcess } from '../relay/testing/relayProcess';
import type { GraphSimulator } from '../electron/core/testing/graphSimulator';
import type { CoreHandle } from '../electron/core/createCore';
import { ADMIN, call, RECEPTION, startClinicLoop, waitFor } from './helpers';

const PHONE = '110000000000001';
const WABA = '100000000000001';
const TOKEN = 'EAAG-bsuid-token-0123456789abcdef';
const BSUID = 'DE.4401234567890123';
const NEXT_BSUID = 'DE.4409876543210987';

/**
 * A patient who adopted a WhatsApp username writes without sharing a phone number. Every part is
 * real except Meta: the simulator posts signed webhooks to a real relay, the core stores them, a
 * receptionist answers through the RPC, the Graph API receives `recipient` (never `to`), and the
 * status webhooks, which name the patient only by `recipient_user_id`, move the ticks.
 */
describe('a patient known only by a business-scoped user id, through relay and core', () => {
  let relay: RelayProcess;
  let sim: GraphSimulator;
  let core: CoreHandle;

  let loop: Awaited<ReturnType<typeof startClinicLoop>>;

  beforeAll(async () => {
    loop = await startClinicLoop({
      tenantId: 'clinic-b',
      phoneNumberId: PHONE,
      wabaId: WABA,
      accessToken: TOKEN,
      templates: [{ name: 'login_code', language: 'de', status: 'APPROVED', category: 'AUTHENTICATION', components: [{ type: 'BODY', text: 'Ihr Code: {{1}}' }] }],
    });
    ({ relay, sim, core } = loop);
  });
  afterAll(() => loop?.stop());

  async function conversationOf(name: string): Promise<number> {
    return waitFor(`conversation with ${name}`, async () => {
      const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
      return inbox.items.find((c) => c.contact.displayName === name)?.id;
    });
  }

  const messageOf = async (conversationId: number, messageId: number) =>
    (await call(core, RECEPTION, 'messages.list', { conversationId })).items.find((m) => m.id === messageId);

  it('answers the patient by recipient and follows the ticks to read', async () => {
    await sim.postInbound({ userId: BSUID, username: 'lotte.k', name: 'Lotte Krämer', text: 'Kann ich den Termin absagen?' });
    const conversationId = await conversationOf('Lotte Krämer');
    const detail = await call(core, RECEPTION, 'conversations.get', { conversationId });
    expect(detail.contact).toMatchObject({ waId: null, businessScopedUserId: BSUID });
    expect(detail.window.open).toBe(true);

    const { messageId } = await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Ja, ist abgesagt.' });
    await sim.waitForSends(1);
    const sent = sim.sends[0]!;
    expect(sent.request).toMatchObject({ recipient: BSUID, type: 'text', text: { body: 'Ja, ist abgesagt.' } });
    expect(sent.request).not.toHaveProperty('to');

    await waitFor('sent tick', async () => (await messageOf(conversationId, messageId))?.status === 'sent');
    expect(await sim.postStatus(sent.wamid, 'delivered')).toBe(200);
    await waitFor('delivered tick', async () => (await messageOf(conversationId, messageId))?.status === 'delivered');
    expect(await sim.postStatus(sent.wamid, 'read')).toBe(200);
    await waitFor('read tick', async () => (await messageOf(conversationId, messageId))?.status === 'read');
    expect(JSON.parse(sim.webhooks.at(-1)!.body).entry[0].changes[0].value.statuses[0]).toMatchObject({ recipient_user_id: BSUID });
    await waitFor('relay drained', () => relay.queued('clinic-b') === 0);
  });

  it('shows 131062 on the message when Meta refuses a template for a BSUID, and does not retry', async () => {
    const conversationId = await conversationOf('Lotte Krämer');
    await call(core, ADMIN, 'templates.sync', {});
    const before = sim.hits.messages;
    const { messageId } = await call(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'login_code', language: 'de', parameters: ['730114'] });
    const failed = await waitFor('failed tick', async () => {
      const m = await messageOf(conversationId, messageId);
      return m?.status === 'failed' ? m : undefined;
    });
    expect(failed.error).toEqual({ code: 131062, title: 'Business-scoped User ID recipients are not supported for this message' });
    // Failed at its first and only request: a refusal Meta will repeat is not retried.
    expect(sim.hits.messages).toBe(before + 1);
  });

  it('keeps one thread when Meta announces a new BSUID, and answers the new one', async () => {
    const conversationId = await conversationOf('Lotte Krämer');
    await sim.postSystem({ userId: BSUID, system: { type: 'user_changed_user_id', user_id: NEXT_BSUID, previous_user_id: BSUID } });
    await sim.postInbound({ userId: NEXT_BSUID, name: 'Lotte Krämer', text: 'Neue Kennung, gleiche Patientin.' });
    await waitFor('new message in the same thread', async () => {
      const thread = await call(core, RECEPTION, 'messages.list', { conversationId });
      return thread.items.some((m) => m.text === 'Neue Kennung, gleiche Patientin.');
    });
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    expect(inbox.items.filter((c) => c.contact.displayName === 'Lotte Krämer')).toHaveLength(1);
    expect((await call(core, RECEPTION, 'conversations.get', { conversationId })).contact.businessScopedUserId).toBe(NEXT_BSUID);

    const before = sim.sends.length;
    await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Danke, notiert.' });
    await sim.waitForSends(before + 1);
    expect(sim.sends.at(-1)!.request).toMatchObject({ recipient: NEXT_BSUID });
  });
});
