import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoreHandle } from '../electron/core/createCore';
import type { GraphSimulator } from '../electron/core/testing/graphSimulator';
import { ADMIN, AUDITOR, call, dispatchAs, listen, RECEPTION, startClinicLoop, waitFor } from './helpers';

const PHONE = '110000000000011';

/**
 * Consent, opt-out keywords, Meta's opt-out signal, access requests by keyword and the send guard,
 * through the real loop: the simulator posts signed webhooks via the relay, the core answers
 * through the Graph API simulator.
 */
describe('privacy operations through relay, core and the Graph API simulator', () => {
  let sim: GraphSimulator;
  let core: CoreHandle;
  let loop: Awaited<ReturnType<typeof startClinicLoop>>;

  beforeAll(async () => {
    loop = await startClinicLoop({
      tenantId: 'clinic-privacy',
      phoneNumberId: PHONE,
      wabaId: '100000000000011',
      accessToken: 'EAAG-privacy-token-0123456789',
      templates: [
        { name: 'reminder', language: 'nl', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Herinnering: uw afspraak morgen.' }] },
        { name: 'reminder_named', language: 'nl', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Beste {{1}}, uw afspraak is morgen.' }] },
      ],
    });
    ({ sim, core } = loop);
  });
  afterAll(() => loop?.stop());

  async function patientWrites(from: string, name: string, text: string): Promise<{ conversationId: number; contactId: number }> {
    await sim.postInbound({ from, name, text });
    const conversationId = await waitFor(`conversation of ${name}`, async () => (await call(core, RECEPTION, 'inbox.listConversations', {})).items.find((c) => c.contact.displayName === name)?.id);
    const detail = await call(core, RECEPTION, 'conversations.get', { conversationId });
    return { conversationId, contactId: detail.contact.id };
  }
  const textsTo = (to: string) => sim.sends.filter((s) => s.to === to && s.type === 'text').map((s) => (s.request as { text: { body: string } }).text.body);

  const CASES = [
    { lang: 'nl', from: '31612000001', word: 'Stoppen!', confirm: /U bent afgemeld/ },
    { lang: 'de', from: '4915112000002', word: 'abmelden', confirm: /Sie sind abgemeldet/ },
    { lang: 'en', from: '447911200003', word: 'UNSUBSCRIBE.', confirm: /You are unsubscribed/ },
    { lang: 'fr', from: '33612000004', word: 'Arrêt', confirm: /Vous êtes désinscrit/ },
    { lang: 'es', from: '34612000005', word: 'baja', confirm: /Se ha dado de baja/ },
    // STOP is a word in every list: the phone number's country picks the language.
    { lang: 'de (STOP)', from: '4917612000006', word: 'STOP', confirm: /Sie sind abgemeldet/ },
  ];

  for (const c of CASES) {
    it(`an opt-out in ${c.lang} sends one confirmation and refuses templates; replies in the window still go`, async () => {
      const { conversationId, contactId } = await patientWrites(c.from, `Patient ${c.from}`, 'Hallo, ik heb een vraag');
      await call(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' });
      await sim.postInbound({ from: c.from, name: `Patient ${c.from}`, text: c.word });
      await waitFor('opted out', async () => (await call(core, RECEPTION, 'privacy.getConsent', { contactId })).status === 'opted_out');
      await waitFor('the confirmation at Meta', () => textsTo(c.from).length === 1);
      expect(textsTo(c.from)[0]).toMatch(c.confirm);

      const refused = await dispatchAs(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' });
      expect(refused).toMatchObject({ ok: false, error: { code: 'OPTED_OUT' } });
      expect(!refused.ok && refused.error.message).toMatch(/opted out.*record their new opt-in/s);
      const consent = await call(core, RECEPTION, 'privacy.getConsent', { contactId });
      expect(consent).toMatchObject({ status: 'opted_out', templatesAllowed: false, current: { source: 'keyword', by: 'system' } });

      // The same word again is not a second confirmation.
      await sim.postInbound({ from: c.from, name: `Patient ${c.from}`, text: c.word });
      await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Begrepen.' });
      await waitFor('the staff reply at Meta', () => textsTo(c.from).length === 2);
      expect(textsTo(c.from)[1]).toBe('Begrepen.');
    });
  }

  it('START records a new opt-in and lifts the block; so does an opt-in recorded at the desk', async () => {
    const from = '31612000010';
    const { conversationId, contactId } = await patientWrites(from, 'Patient start', 'STOP');
    await waitFor('opted out', async () => (await call(core, RECEPTION, 'privacy.getConsent', { contactId })).status === 'opted_out');
    await sim.postInbound({ from, name: 'Patient start', text: 'start' });
    await waitFor('opted in', async () => (await call(core, RECEPTION, 'privacy.getConsent', { contactId })).status === 'opted_in');
    await waitFor('two confirmations', () => textsTo(from).length === 2);
    expect(textsTo(from)[1]).toMatch(/weer aangemeld/);
    await call(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' });

    await call(core, RECEPTION, 'privacy.recordConsent', { contactId, status: 'opted_out', source: 'desk', note: 'asked at the desk' });
    expect(await dispatchAs(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' })).toMatchObject({ ok: false, error: { code: 'OPTED_OUT' } });
    const after = await call(core, RECEPTION, 'privacy.recordConsent', { contactId, status: 'opted_in', source: 'form' });
    expect(after.history.map((h) => [h.status, h.source])).toEqual([
      ['opted_in', 'form'],
      ['opted_out', 'desk'],
      ['opted_in', 'keyword'],
      ['opted_out', 'keyword'],
    ]);
    expect(after.history[0]!.byName).toBe('Anna');
    await call(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' });
    // Both templates reach Meta before the next test injects a fault into the same route (the
    // outbox sends after the call answers, so an unfinished send here could take that fault).
    await waitFor('both templates at Meta', () => sim.sends.filter((s) => s.to === from && s.type === 'template').length === 2);
  });

  it("Meta's 131050 (the patient stopped marketing messages) sets opted out", async () => {
    const { conversationId, contactId } = await patientWrites('31612000020', 'Patient meta', 'Dag');
    sim.inject('messages', { type: 'failedStatus', code: 131050, title: 'Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.' });
    await call(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' });
    await waitFor('opted out by Meta', async () => (await call(core, RECEPTION, 'privacy.getConsent', { contactId })).status === 'opted_out');
    expect((await call(core, RECEPTION, 'privacy.getConsent', { contactId })).current).toMatchObject({ source: 'meta' });
    expect(await dispatchAs(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder', language: 'nl' })).toMatchObject({ ok: false, error: { code: 'OPTED_OUT' } });
  });

  it('INZAGE registers one access request with its deadline, acknowledges once and tells admins', async () => {
    const events: string[] = [];
    const stop = await listen(core, ADMIN, (event) => void (event === 'privacy.requestReceived' && events.push(event)));
    const from = '31612000030';
    const { contactId } = await patientWrites(from, 'Patient inzage', 'Inzage');
    const requests = await waitFor('the request', async () => {
      const list = await call(core, ADMIN, 'privacy.requests.list', { contactId });
      return list.length > 0 && list;
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ kind: 'access', via: 'whatsapp', dueState: 'due', doneAt: null });
    expect(requests[0]!.dueAt - requests[0]!.receivedAt).toBe(30 * 24 * 60 * 60_000);
    await waitFor('the acknowledgement', () => textsTo(from).length === 1);
    const due = new Date(requests[0]!.dueAt);
    expect(textsTo(from)[0]).toContain(`${String(due.getUTCDate()).padStart(2, '0')}-${String(due.getUTCMonth() + 1).padStart(2, '0')}-${due.getUTCFullYear()}`);
    await waitFor('admins told', () => events.length === 1);
    // Asking again while it is open is the same request, and no second acknowledgement.
    await sim.postInbound({ from, name: 'Patient inzage', text: 'INZAGE' });
    await sim.postInbound({ from, name: 'Patient inzage', text: 'Wanneer hoor ik iets?' });
    const conversationId = (await call(core, RECEPTION, 'inbox.listConversations', {})).items.find((c) => c.contact.id === contactId)!.id;
    await waitFor('third message stored', async () => (await call(core, RECEPTION, 'messages.list', { conversationId })).items.some((m) => m.text === 'Wanneer hoor ik iets?'));
    expect(await call(core, ADMIN, 'privacy.requests.list', { contactId })).toHaveLength(1);
    expect(textsTo(from)).toHaveLength(1);
    // Never fulfilled automatically: done only when staff mark it with what was sent.
    const done = await call(core, RECEPTION, 'privacy.requests.complete', { requestId: requests[0]!.id, outcome: 'Export handed over at the desk after ID check' });
    expect(done).toMatchObject({ dueState: 'done', doneBy: expect.any(String) });
    stop();
  });

  it('the send guard: findings for the composer, the preview masked, block mode refuses until an admin lifts it', async () => {
    const { conversationId } = await patientWrites('31612000040', 'Patient guard', 'Mijn BSN is 111222333, bel 06-12345678');
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    expect(inbox.items.find((c) => c.id === conversationId)!.lastMessagePreview).toBe('Mijn BSN is •••, bel •••');

    const text = 'Uw IBAN NL91ABNA0417164300 is genoteerd';
    const check = await call(core, RECEPTION, 'privacy.checkOutgoing', { text });
    expect(check).toMatchObject({ mode: 'warn', blocked: false, findings: [{ kind: 'iban', start: 8, end: 26 }] });
    await call(core, RECEPTION, 'messages.send', { conversationId, text });

    expect(await dispatchAs(core, RECEPTION, 'privacy.updateSettings', { sendGuard: 'block' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    await call(core, ADMIN, 'privacy.updateSettings', { sendGuard: 'block' });
    expect((await call(core, RECEPTION, 'privacy.checkOutgoing', { text })).blocked).toBe(true);
    const refused = await dispatchAs(core, RECEPTION, 'messages.send', { conversationId, text });
    expect(refused).toMatchObject({ ok: false, error: { code: 'PERSONAL_DATA_BLOCKED' } });
    expect(!refused.ok && refused.error.message).not.toContain('NL91');
    await call(core, RECEPTION, 'messages.send', { conversationId, text: 'Uw rekeningnummer is genoteerd' });
    // What is typed into a template's variable is guarded the same way; the template's own text is not.
    const template = (value: string) => dispatchAs(core, RECEPTION, 'messages.sendTemplate', { conversationId, name: 'reminder_named', language: 'nl', parameters: [value] });
    const refusedTemplate = await template('info@example.org');
    expect(refusedTemplate).toMatchObject({ ok: false, error: { code: 'PERSONAL_DATA_BLOCKED' } });
    expect(!refusedTemplate.ok && refusedTemplate.error.message).not.toContain('example.org');
    expect(await template('Pieter')).toMatchObject({ ok: true });
    const templatesSent = () => sim.sends.filter((x) => x.type === 'template' && JSON.stringify(x.request).includes('reminder_named')).map((x) => JSON.stringify(x.request));
    await waitFor('the template without identifiers sent', () => templatesSent().length === 1);
    expect(templatesSent()[0]).toContain('Pieter');
    await call(core, ADMIN, 'privacy.updateSettings', { sendGuard: 'warn' });
    expect(await template('info@example.org')).toMatchObject({ ok: true });
    await waitFor('in warn mode the confirmed template goes', () => templatesSent().length === 2);
    await call(core, RECEPTION, 'messages.send', { conversationId, text });
  });

  it('each privacy method is refused for a role that may not use it', async () => {
    const { contactId } = await patientWrites('31612000050', 'Patient roles', 'Hallo');
    const refusedFor = async (person: typeof RECEPTION, method: string, params: unknown) => {
      const r = await dispatchAs(core, person, method, params);
      return !r.ok && r.error.code === 'FORBIDDEN';
    };
    expect(await refusedFor(AUDITOR, 'privacy.getConsent', { contactId })).toBe(true);
    expect(await refusedFor(AUDITOR, 'privacy.recordConsent', { contactId, status: 'opted_in', source: 'desk' })).toBe(true);
    expect(await refusedFor(AUDITOR, 'privacy.requests.register', { contactId, kind: 'access' })).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.export', { contactId, destinationDir: '/tmp' })).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.legalHold.set', { contactId, reason: 'WGBO dossier' })).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.retention.runNow', {})).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.retention.update', { rules: [{ kind: 'messages', days: 10, legalMinimumDays: 0 }] })).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.updateKeywords', await call(core, ADMIN, 'privacy.getKeywords', {}))).toBe(true);
    expect(await refusedFor(RECEPTION, 'privacy.eraseContact', { contactId, reason: 'patient asked' })).toBe(true);
    expect(await refusedFor(ADMIN, 'privacy.checkOutgoing', { text: 'x' })).toBe(true);
  });

  it('a legal hold refuses erasure and says why; lifted, the erasure goes through', async () => {
    const { contactId } = await patientWrites('31612000060', 'Patient hold', 'Hallo');
    await call(core, ADMIN, 'privacy.legalHold.set', { contactId, reason: 'WGBO: medical record kept 20 years' });
    const refused = await dispatchAs(core, ADMIN, 'privacy.eraseContact', { contactId, reason: 'patient asked for erasure' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'LEGAL_HOLD' } });
    expect(!refused.ok && refused.error.message).toMatch(/legal hold.*cannot be erased/s);
    expect(await call(core, ADMIN, 'privacy.legalHold.get', { contactId })).toMatchObject({ reason: 'WGBO: medical record kept 20 years' });
    expect(await call(core, ADMIN, 'privacy.legalHold.clear', { contactId, reason: 'duty ended' })).toEqual({ cleared: true });
    expect(await call(core, ADMIN, 'privacy.eraseContact', { contactId, reason: 'patient asked for erasure' })).toEqual({ erased: true });
  });
});
