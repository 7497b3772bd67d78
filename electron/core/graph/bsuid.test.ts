import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { normalizeWebhook } from '../ingest/normalize';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { createGraphClient, type GraphClient } from './client';
import { GraphError, META_CODE } from './errors';
import { SendMessageRequestSchema, SendMessageResponseSchema, addresseeFromId, addresseeOf } from './schemas';

const TOKEN = 'EAAbsuid-graph-token-000';
const PHONE = '110000000000001';
const WABA = '100000000000001';
const APP_SECRET = 'bsuid-app-secret';
const BSUID = 'DE.1502576394655843';
const PARENT = 'US.ENT.11815799212886844830';
const NUMBER = '4915110000042';
const logger = pino({ level: 'silent' });

const text = (extra: Record<string, unknown>) => ({ messaging_product: 'whatsapp', type: 'text', text: { body: 'Hallo' }, ...extra });

describe('Messages API addressing by business-scoped user id (schemas)', () => {
  it('takes `to`, `recipient` (BSUID or parent BSUID) or both, and refuses neither or a malformed BSUID', () => {
    expect(SendMessageRequestSchema.safeParse(text({ to: NUMBER })).success).toBe(true);
    expect(SendMessageRequestSchema.safeParse(text({ recipient: BSUID })).success).toBe(true);
    expect(SendMessageRequestSchema.safeParse(text({ recipient: PARENT })).success).toBe(true);
    expect(SendMessageRequestSchema.safeParse(text({ to: NUMBER, recipient: BSUID })).success).toBe(true);
    expect(SendMessageRequestSchema.safeParse(text({})).success).toBe(false);
    for (const bad of ['1502576394655843', 'de.1502576394655843', 'DE.', 'DE.15025-7639', `DE.${'1'.repeat(129)}`]) {
      expect(SendMessageRequestSchema.safeParse(text({ recipient: bad })).success, bad).toBe(false);
    }
  });

  it('prefers the phone number, as Meta recommends, and maps stored ids back without confusing them', () => {
    expect(addresseeOf({ waId: NUMBER, userId: BSUID })).toEqual({ to: NUMBER });
    expect(addresseeOf({ waId: null, userId: BSUID })).toEqual({ recipient: BSUID });
    expect(addresseeOf({ waId: null, userId: 'garbage' })).toBeNull();
    expect(addresseeFromId(NUMBER)).toEqual({ to: NUMBER });
    expect(addresseeFromId(PARENT)).toEqual({ recipient: PARENT });
  });

  it('reads send answers for a phone number (wa_id) and for a BSUID (user_id)', () => {
    const messages = [{ id: 'wamid.X' }];
    expect(SendMessageResponseSchema.safeParse({ messaging_product: 'whatsapp', contacts: [{ input: NUMBER, wa_id: NUMBER }], messages }).success).toBe(true);
    expect(SendMessageResponseSchema.safeParse({ messaging_product: 'whatsapp', contacts: [{ input: BSUID, user_id: BSUID }], messages }).success).toBe(true);
  });
});

describe('Graph client and simulator with BSUID recipients', () => {
  let sim: GraphSimulator;
  let client: GraphClient;
  let sink: Server;
  let received: string[];

  beforeEach(async () => {
    received = [];
    sink = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    sim = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: PHONE,
      wabaId: WABA,
      appSecret: APP_SECRET,
      webhookUrl: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/webhooks/whatsapp`,
    });
    await sim.listen();
    client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger, timeoutMs: 2000 });
    sim.noteInbound(BSUID);
    sim.noteInbound(NUMBER);
  });

  afterEach(async () => {
    await sim.close();
    await new Promise((r) => sink.close(r));
  });

  const lastStatus = () => JSON.parse(received.at(-1)!).entry[0].changes[0].value.statuses[0] as Record<string, unknown>;

  it('sends by `recipient`; Meta answers contacts[{input, user_id}] and statuses carry recipient_user_id only', async () => {
    const sent = await client.sendText({ phoneNumberId: PHONE, recipient: BSUID, body: 'Ihr Befund ist da.', callbackData: 'ci-outbox:1' });
    expect(sent).toMatchObject({ waId: null, userId: BSUID });
    expect(sim.sends[0]!.request).toMatchObject({ recipient: BSUID, recipient_type: 'individual' });
    expect(sim.sends[0]!.request).not.toHaveProperty('to');

    expect(await sim.postStatus(sent.wamid, 'delivered')).toBe(200);
    const status = lastStatus();
    expect(status).toMatchObject({ id: sent.wamid, status: 'delivered', recipient_user_id: BSUID, biz_opaque_callback_data: 'ci-outbox:1' });
    expect(status).not.toHaveProperty('recipient_id');
    // Ingest reads the recipient as a user id, and the status still names its message by wamid.
    const n = normalizeWebhook(WebhookSchema.parse(JSON.parse(received.at(-1)!)));
    expect(n.statuses[0]).toMatchObject({ wamid: sent.wamid, status: 'delivered', recipient: { waId: null, userId: BSUID } });
  });

  it('uses `to` when both are given, as Meta does', async () => {
    const sent = await client.send(PHONE, { messaging_product: 'whatsapp', to: NUMBER, recipient: BSUID, type: 'text', text: { body: 'Hallo' } });
    expect(sent).toMatchObject({ waId: NUMBER, userId: null });
    await sim.postStatus(sent.wamid, 'sent');
    expect(lastStatus()).toMatchObject({ recipient_id: NUMBER });
  });

  it('reports 131062 as a permanent failure with Meta’s title', async () => {
    sim.inject('messages', { type: 'graph', code: META_CODE.bsuidUnsupported, message: '(#131062) Business-scoped User ID recipients are not supported for this message' });
    const err = await client.sendText({ phoneNumberId: PHONE, recipient: BSUID, body: 'x' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toMatchObject({ kind: 'permanent', code: 'WHATSAPP_REJECTED', metaCode: 131062, maybeDelivered: false });
    expect((err as GraphError).title).toBe('Business-scoped User ID recipients are not supported for this message');
  });

  it('posts inbound messages and identity notices from a patient without a phone number', async () => {
    const { status } = await sim.postInbound({ userId: BSUID, username: 'noor.b', name: 'Noor', text: 'Hallo' });
    expect(status).toBe(200);
    const value = JSON.parse(received.at(-1)!).entry[0].changes[0].value;
    expect(value.contacts).toEqual([{ profile: { name: 'Noor', username: 'noor.b' }, user_id: BSUID }]);
    expect(value.messages[0]).toMatchObject({ from_user_id: BSUID, type: 'text' });
    expect(value.messages[0]).not.toHaveProperty('from');

    const next = 'DE.2609871234567001';
    await sim.postSystem({ userId: BSUID, system: { type: 'user_changed_user_id', user_id: next, previous_user_id: BSUID } });
    const notice = JSON.parse(received.at(-1)!).entry[0].changes[0].value;
    expect(notice).not.toHaveProperty('contacts');
    expect(notice.messages[0]).toMatchObject({ type: 'system', system: { type: 'user_changed_user_id', user_id: next, previous_user_id: BSUID } });
    // The new id may be written to at once.
    await expect(client.sendText({ phoneNumberId: PHONE, recipient: next, body: 'Willkommen zurück' })).resolves.toMatchObject({ userId: next });
  });
});
