import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, statusChange, textMessageChange } from '../relay/testing/signWebhook';
import type { CoreHandle } from '../electron/core/createCore';
import { ADMIN, call, dispatchAs, listen, RECEPTION, startPairedCore, waitFor } from './helpers';

// Meta-shaped payloads from ../shared/vectors, kept in the repo in tests/vectors.
const vector = (name: string): string => readFileSync(new URL(`./vectors/whatsapp/${name}`, import.meta.url), 'utf8');
// The relay re-checks the bytes it got; Meta sends compact JSON, so send the vectors compacted.
const compact = (json: string): string => JSON.stringify(JSON.parse(json));

const PHONE_A = '110000000000001';
const PHONE_B = '220000000000002';

describe('a patient message through a real relay into the core', () => {
  let relay: RelayProcess;
  let clinicA: CoreHandle;
  let clinicB: CoreHandle;

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: [PHONE_A] });
    await relay.createTenant({ tenantId: 'clinic-b', phoneNumberIds: [PHONE_B] });
    clinicA = await startPairedCore(relay, 'clinic-a');
    clinicB = await startPairedCore(relay, 'clinic-b');
  });
  afterAll(async () => {
    await clinicA?.close();
    await clinicB?.close();
    await relay?.stop();
  });

  it('stores Meta\'s inbound text and shows it in the inbox and the thread', async () => {
    const received: number[] = [];
    const off = await listen(clinicA, RECEPTION, (event, payload) => {
      if (event === 'message.received') received.push((payload as { messageId: number }).messageId);
    });
    const res = await relay.postWebhook(compact(vector('inbound_text.json')));
    expect(res.status).toBe(200);
    await waitFor('message.received event', () => received.length > 0);
    off();

    const inbox = await call(clinicA, RECEPTION, 'inbox.listConversations', {});
    expect(inbox.items).toHaveLength(1);
    expect(inbox.items[0]!.contact.displayName).toBe('Maria Muster');
    expect(inbox.items[0]!.unreadCount).toBe(1);
    const thread = await call(clinicA, RECEPTION, 'messages.list', { conversationId: inbox.items[0]!.id });
    expect(thread.items.map((m) => m.text)).toEqual(['Hallo, kann ich meinen Termin am Donnerstag verschieben?']);
    expect(thread.items[0]!.direction).toBe('in');
    // The relay deletes what was acked.
    await waitFor('relay queue drained', () => relay.queued('clinic-a') === 0);
  });

  it('says plainly when an enrolment code is wrong, and keeps the existing pairing', async () => {
    const result = await dispatchAs(clinicA, ADMIN, 'setup.pair', { relayUrl: relay.url, code: 'ABCD-EFGH-JKMN-PQRS' });
    expect(result).toMatchObject({ ok: false, error: { code: 'ENROLMENT_CODE_INVALID' } });
    expect(clinicA.relayStatus().state).toBe('connected');
    const plain = await dispatchAs(clinicA, ADMIN, 'setup.pair', { relayUrl: 'http://relay.example.eu', code: 'ABCD-EFGH-JKMN-PQRS' });
    expect(plain).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
  });

  it('keeps one row when Meta delivers the same webhook twice', async () => {
    const body = batchWebhook([textMessageChange({ phoneNumberId: PHONE_A, wamid: 'wamid.DUP1', text: 'Zweimal gesendet', from: '15555550177' })]);
    expect((await relay.postWebhook(body)).status).toBe(200);
    // A retry by Meta is byte-identical; the relay may drop it, the core must not store it twice either way.
    expect((await relay.postWebhook(body)).status).toBe(200);
    await waitFor('relay queue drained', () => relay.queued('clinic-a') === 0);
    const hits = await call(clinicA, RECEPTION, 'search.messages', { query: 'Zweimal' });
    expect(hits.items).toHaveLength(1);
  });

  it('routes a batch for two clinics so each sees only its own patient', async () => {
    const body = batchWebhook([
      textMessageChange({ phoneNumberId: PHONE_A, wamid: 'wamid.A-ONLY', text: 'Nur für Praxis A', from: '15555550111', name: 'Anton' }),
      textMessageChange({ phoneNumberId: PHONE_B, wamid: 'wamid.B-ONLY', text: 'Alleen voor praktijk B', from: '15555550222', name: 'Bea' }),
    ]);
    expect((await relay.postWebhook(body)).status).toBe(200);
    const inA = await waitFor('A has its message', async () => {
      const r = await call(clinicA, RECEPTION, 'search.messages', { query: 'Praxis' });
      return r.items.length > 0 ? r : undefined;
    });
    const inB = await waitFor('B has its message', async () => {
      const r = await call(clinicB, RECEPTION, 'search.messages', { query: 'praktijk' });
      return r.items.length > 0 ? r : undefined;
    });
    expect(inA.items).toHaveLength(1);
    expect(inB.items).toHaveLength(1);
    expect((await call(clinicA, RECEPTION, 'search.messages', { query: 'praktijk' })).items).toHaveLength(0);
    expect((await call(clinicB, RECEPTION, 'search.messages', { query: 'Praxis' })).items).toHaveLength(0);
  });

  it('applies statuses that arrive before their message and never moves a message backwards', async () => {
    const wamid = 'wamid.INBOUND-THEN-STATUS';
    // An inbound message gets no statuses; use an outbound-looking status for an unknown wamid:
    // it is kept unapplied, and a late "sent" after "read" changes nothing.
    const read = batchWebhook([statusChange({ phoneNumberId: PHONE_A, wamid, status: 'read', timestamp: 1760000300 })]);
    const sent = batchWebhook([statusChange({ phoneNumberId: PHONE_A, wamid, status: 'sent', timestamp: 1760000100 })]);
    expect((await relay.postWebhook(read)).status).toBe(200);
    expect((await relay.postWebhook(sent)).status).toBe(200);
    await waitFor('relay queue drained', () => relay.queued('clinic-a') === 0);
    // Nothing to show in the inbox for a status without a message; the core did not fail on it.
    expect(clinicA.relayStatus().state).toBe('connected');
  });
});
