import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayProcess } from '../relay/testing/relayProcess';
import type { GraphSimulator } from '../electron/core/testing/graphSimulator';
import type { CoreHandle } from '../electron/core/createCore';
import { ADMIN, AUDITOR, call, dispatchAs, listen, RECEPTION, startClinicLoop, waitFor } from './helpers';

const PHONE = '110000000000001';
const WABA = '100000000000001';
const TOKEN = 'EAAG-test-token-0123456789abcdef';

/**
 * The whole loop a receptionist lives in, with every part real except Meta: a patient writes
 * (the simulator posts a signed webhook to the relay), the core stores it, staff reply, the reply
 * reaches the Graph API, and Meta's status webhooks move the ticks — back through the relay.
 */
describe('patient ⇄ clinic through relay, core and the Graph API simulator', () => {
  let relay: RelayProcess;
  let sim: GraphSimulator;
  let core: CoreHandle;

  let loop: Awaited<ReturnType<typeof startClinicLoop>>;

  beforeAll(async () => {
    loop = await startClinicLoop({
      tenantId: 'clinic-a',
      phoneNumberId: PHONE,
      wabaId: WABA,
      accessToken: TOKEN,
      templates: [
        {
          name: 'appointment_reminder',
          language: 'de',
          status: 'APPROVED',
          category: 'UTILITY',
          components: [{ type: 'BODY', text: 'Guten Tag {{1}}, Ihr Termin ist am {{2}}.' }],
        },
      ],
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

  it('a reply reaches Meta and its ticks move to read', async () => {
    await sim.postInbound({ from: '4915110000001', name: 'Jonas Weber', text: 'Kann ich morgen kommen?' });
    const conversationId = await conversationOf('Jonas Weber');
    const detail = await call(core, RECEPTION, 'conversations.get', { conversationId });
    expect(detail.window.open).toBe(true);

    const { messageId } = await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Ja, um 9:30 Uhr.' });
    await sim.waitForSends(1);
    const sent = sim.sends.find((s) => s.type === 'text')!;
    expect(sent.request).toMatchObject({ type: 'text', text: { body: 'Ja, um 9:30 Uhr.' }, to: '4915110000001' });

    const statusOf = async (): Promise<string | undefined> => {
      const thread = await call(core, RECEPTION, 'messages.list', { conversationId });
      return thread.items.find((m) => m.id === messageId)?.status;
    };
    await waitFor('sent tick', async () => (await statusOf()) === 'sent');
    expect(await sim.postStatus(sent.wamid, 'delivered')).toBe(200);
    expect(await sim.postStatus(sent.wamid, 'read')).toBe(200);
    await waitFor('read tick', async () => (await statusOf()) === 'read');
    // A late "delivered" must not move it back.
    expect(await sim.postStatus(sent.wamid, 'delivered')).toBe(200);
    await waitFor('relay drained', () => relay.queued('clinic-a') === 0);
    expect(await statusOf()).toBe('read');
  });

  it('marking a conversation read sends a read receipt to Meta', async () => {
    const { wamid } = await sim.postInbound({ from: '4915110000002', name: 'Lena Koch', text: 'Danke!' });
    const conversationId = await conversationOf('Lena Koch');
    await call(core, RECEPTION, 'conversations.markRead', { conversationId });
    await waitFor('read receipt at Meta', () => sim.reads.includes(wamid));
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', { filter: 'unread' });
    expect(inbox.items.find((c) => c.id === conversationId)).toBeUndefined();
  });

  it('outside the 24-hour window free text is refused and a template goes out', async () => {
    const dayAndAHourAgo = Date.now() - 25 * 3600_000;
    await sim.postInbound({ from: '4915110000003', name: 'Petra Vogel', text: 'Hallo', at: dayAndAHourAgo });
    const conversationId = await conversationOf('Petra Vogel');
    const detail = await call(core, RECEPTION, 'conversations.get', { conversationId });
    expect(detail.window.open).toBe(false);

    const refused = await dispatchAs(core, RECEPTION, 'messages.send', { conversationId, text: 'Noch da?' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'WINDOW_CLOSED' } });

    const templates = await call(core, RECEPTION, 'templates.list', {});
    expect(templates.map((t) => t.name)).toContain('appointment_reminder');
    const before = sim.sends.length;
    await call(core, RECEPTION, 'messages.sendTemplate', {
      conversationId,
      name: 'appointment_reminder',
      language: 'de',
      parameters: ['Frau Vogel', 'Montag, 10 Uhr'],
    });
    await sim.waitForSends(before + 1);
    expect(sim.sends.at(-1)!.request).toMatchObject({ type: 'template', template: { name: 'appointment_reminder', language: { code: 'de' } } });
  });

  it('downloads a patient\'s photo promptly and keeps it encrypted for the thread', async () => {
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(20_000, 7)]);
    const mediaId = sim.addMedia({ bytes: photo, mimeType: 'image/jpeg' });
    await sim.postInbound({ from: '4915110000004', name: 'Mia Lang', media: { kind: 'image', mediaId, caption: 'Hautausschlag' } });
    const conversationId = await conversationOf('Mia Lang');
    const media = await waitFor('photo stored', async () => {
      const thread = await call(core, RECEPTION, 'messages.list', { conversationId });
      const m = thread.items.find((x) => x.type === 'image')?.media;
      return m?.state === 'stored' ? m : undefined;
    });
    const got = await call(core, RECEPTION, 'media.get', { mediaId: media.id });
    expect(got.mimeType).toBe('image/jpeg');
    expect(Buffer.from(got.dataBase64, 'base64').equals(photo)).toBe(true);
  });

  it('downloads a voice message and tells the open thread', async () => {
    const ogg = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(3000, 1)]);
    const mediaId = sim.addMedia({ bytes: ogg, mimeType: 'audio/ogg' });
    const updated: number[] = [];
    const off = await listen(core, RECEPTION, (event, payload) => {
      if (event === 'message.updated') updated.push((payload as { conversationId: number }).conversationId);
    });
    await sim.postInbound({ from: '4915110000009', name: 'Vera Voice', media: { kind: 'audio', mediaId } });
    const conversationId = await conversationOf('Vera Voice');
    const media = await waitFor('voice stored', async () => {
      const thread = await call(core, RECEPTION, 'messages.list', { conversationId });
      const m = thread.items.find((x) => x.type === 'audio')?.media;
      return m?.state === 'stored' ? m : undefined;
    });
    expect(media.mimeType).toBe('audio/ogg');
    // The open thread is told to redraw once the file is here.
    await waitFor('message.updated event', () => updated.includes(conversationId));
    off();
  });

  it('sends a document: uploaded to Meta first, then sent by its media id', async () => {
    await sim.postInbound({ from: '4915110000005', name: 'Otto Brandt', text: 'Können Sie mir den Befund schicken?' });
    const conversationId = await conversationOf('Otto Brandt');
    const pdf = Buffer.from('%PDF-1.4\n% Befund\n');
    const before = sim.sends.length;
    await call(core, RECEPTION, 'messages.sendMedia', {
      conversationId,
      dataBase64: pdf.toString('base64'),
      mimeType: 'application/pdf',
      filename: 'befund.pdf',
      caption: 'Ihr Befund',
    });
    await sim.waitForSends(before + 1);
    const sent = sim.sends.at(-1)!;
    expect(sent.type).toBe('document');
    expect(sim.uploads.at(-1)).toMatchObject({ mimeType: 'application/pdf', size: pdf.length });
    expect(sent.request).toMatchObject({ document: { id: sim.uploads.at(-1)!.id, filename: 'befund.pdf', caption: 'Ihr Befund' } });
  });

  it('refuses what a role may not do, whatever the UI shows', async () => {
    const result = await dispatchAs(core, AUDITOR, 'messages.send', { conversationId: 1, text: 'x' });
    expect(result).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const setup = await dispatchAs(core, RECEPTION, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN });
    expect(setup).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('tells the admin when Meta stops accepting the token, holds replies, and sends them once a new token is set', async () => {
    await sim.postInbound({ from: '4915110000006', name: 'Rita Hahn', text: 'Ist das Rezept fertig?' });
    const conversationId = await conversationOf('Rita Hahn');
    const states: boolean[] = [];
    const off = await listen(core, RECEPTION, (event, payload) => {
      if (event === 'whatsapp.stateChanged') states.push((payload as { tokenExpired: boolean }).tokenExpired);
    });
    sim.rotateToken('EAAG-renewed-token-0123456789abcdef');
    const before = sim.sends.length;
    const { messageId } = await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Ja, liegt bereit.' });
    await waitFor('token-expired state', async () => (await call(core, RECEPTION, 'whatsapp.status', {})).tokenExpired);
    expect(states).toContain(true);
    const thread = await call(core, RECEPTION, 'messages.list', { conversationId });
    expect(thread.items.find((m) => m.id === messageId)?.status).toBe('pending'); // held, not lost, not failed

    await call(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: 'EAAG-renewed-token-0123456789abcdef', graphBaseUrl: sim.url });
    await sim.waitForSends(before + 1);
    expect(sim.sends.at(-1)!.request).toMatchObject({ text: { body: 'Ja, liegt bereit.' } });
    expect((await call(core, RECEPTION, 'whatsapp.status', {})).tokenExpired).toBe(false);
    off();
  });

  it('rejects a wrong access token at setup and keeps the working one', async () => {
    const result = await dispatchAs(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: 'EAAG-wrong-token-000000000', graphBaseUrl: sim.url });
    // (the renewed token from the test before stays the one in use)
    expect(result).toMatchObject({ ok: false, error: { code: 'WHATSAPP_TOKEN_INVALID' } });
    const status = await call(core, RECEPTION, 'whatsapp.status', {});
    expect(status).toMatchObject({ configured: true, tokenExpired: false });
  });

  it('never sends the token to a Graph API address other than Meta or this computer', async () => {
    for (const graphBaseUrl of ['http://graph.facebook.com', 'https://graph.facebook.com.evil.example', 'https://10.0.0.5:8443']) {
      const result = await dispatchAs(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: 'EAAG-renewed-token-0123456789abcdef', graphBaseUrl });
      expect(result).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    }
    expect(sim.sends.length).toBeGreaterThan(0); // the simulator on 127.0.0.1 was and stays accepted
    expect(await call(core, RECEPTION, 'whatsapp.status', {})).toMatchObject({ configured: true, tokenExpired: false });
  });
});
