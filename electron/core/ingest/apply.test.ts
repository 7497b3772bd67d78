import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { getOrCreateConversation, listConversations, setConversationStatus } from '../db/repo/conversations';
import { getMessageByWamid, insertOutboundMessage, listThread, setOutboundWamid } from '../db/repo/messages';
import { listStatusHistory } from '../db/repo/statuses';
import { upsertContactFromWebhook } from '../db/repo/contacts';
import { createTestDb, type TestDb } from '../testing/testDb';
import {
  PATIENT_BSUID,
  PATIENT_WA_ID,
  PHONE_NUMBER_ID,
  contact,
  reaction,
  sampleMessages,
  status,
  vectorPayloads,
  wamid,
  webhookBody,
} from '../testing/whatsappPayloads';
import { applyWebhook } from './apply';
import { normalizeWebhook } from './normalize';

let t: TestDb;
beforeEach(() => {
  t = createTestDb();
});
afterEach(() => t.cleanup());

const hook = (value: Record<string, unknown>, phoneNumberId?: string) => WebhookSchema.parse(webhookBody(value, phoneNumberId));
const apply = (value: Record<string, unknown>, receivedAt = 1_770_000_000_000) => applyWebhook(t.db, hook(value), { receivedAt });
const count = (sql: string, ...args: unknown[]) => t.db.prepare(sql).pluck().get(...args) as number;

/** An outbound message the clinic sent and Meta accepted with `id`. */
function sentMessage(id: string): number {
  const c = upsertContactFromWebhook(t.db, { waId: PATIENT_WA_ID, userId: null }, 1);
  const conv = getOrCreateConversation(t.db, c.id, PHONE_NUMBER_ID, 1);
  const messageId = insertOutboundMessage(t.db, { conversationId: conv.id, type: 'text', text: 'Ihr Termin', content: {}, authorUserId: 'u1' }, 1);
  setOutboundWamid(t.db, messageId, id, 2);
  return messageId;
}

describe('applyWebhook', () => {
  it('dates a new conversation by when the patient wrote, not when a late backlog reached this computer', () => {
    const text = sampleMessages().text!;
    const wroteAt = Number(text.timestamp) * 1000;
    apply({ contacts: [contact()], messages: [text] }, wroteAt + 2 * 86_400_000);
    const [conversation] = listConversations(t.db, { filter: { kind: 'all' }, limit: 10, cursor: null }).items;
    expect(conversation!.lastActivityAt).toBe(wroteAt);
  });

  it('stores every message type with its text, raw JSON, reply context and media reference', () => {
    const samples = sampleMessages();
    // The number change comes last: after it, the patient writes from the new number.
    const { system, ...rest } = samples;
    const r = apply({ contacts: [contact()], messages: [...Object.values(rest), system] });
    expect(r.counts.messages).toBe(Object.keys(samples).length);
    const row = (name: string) => getMessageByWamid(t.db, samples[name]!.id as string)!;

    expect(row('text')).toMatchObject({ type: 'text', text: 'Kann ich den Termin verschieben?', direction: 'inbound', status: 'received' });
    expect(row('image')).toMatchObject({ type: 'image', text: 'Rezept Ärztin', media_id: '3000000000000001' });
    expect(JSON.parse(row('audio').content_json).audio.voice).toBe(true);
    expect(row('document')).toMatchObject({ type: 'document', media_id: '3000000000000004' });
    expect(row('location').text).toContain('Praxis');
    expect(row('contacts').text).toBe('Anna Beispiel');
    expect(row('button_reply')).toMatchObject({ type: 'interactive', text: 'Bestätigen' });
    expect(row('list_reply').text).toContain('Dienstag 10:00');
    expect(JSON.parse(row('nfm_reply').content_json).interactive.nfm_reply.response_json).toContain('flow_token');
    expect(row('template_button')).toMatchObject({ type: 'button', text: 'Ja, ich komme' });
    expect(row('system')).toMatchObject({ type: 'system' });
    expect(row('order').type).toBe('order');
    expect(row('with_context').context_wamid).toBe('wamid.REPLIEDTO');
    expect(JSON.parse(row('forwarded').content_json).context.frequently_forwarded).toBe(true);
    expect(JSON.parse(row('referred_product').content_json).context.referred_product.product_retailer_id).toBe('p1');
    expect(JSON.parse(row('referral').content_json).referral.ctwa_clid).toBe('clid');
    expect(JSON.parse(row('with_errors').content_json).errors[0].code).toBe(131000);

    // Unknown and unsupported types are kept as unsupported with everything Meta sent.
    expect(row('meta_unsupported')).toMatchObject({ type: 'unsupported' });
    const future = row('future_type');
    expect(future.type).toBe('unsupported');
    expect(JSON.parse(future.content_json)).toMatchObject({ type: 'hologram', hologram: { frames: 3 }, clinic_inbox_unsupported: 'unknown_type' });
    expect(r.counts.unsupportedMessages).toBe(2);

    // Media wait for the downloader.
    expect(count(`SELECT count(*) FROM media WHERE state = 'pending'`)).toBe(5);
    // One contact, one conversation; the system message moved the contact to the new number.
    expect(count('SELECT count(*) FROM contacts')).toBe(1);
    expect(count(`SELECT count(*) FROM contacts WHERE wa_id = '15555550199'`)).toBe(1);
    const inbox = listConversations(t.db);
    expect(inbox.items).toHaveLength(1);
    expect(inbox.items[0]).toMatchObject({ contactName: 'Zoë Müller', unreadCount: Object.keys(samples).length - 1 });
  });

  it('stores each payload of the shared reference vectors', () => {
    const v = vectorPayloads();
    for (const body of Object.values(v)) applyWebhook(t.db, WebhookSchema.parse(body), { receivedAt: 1 });
    expect(count(`SELECT count(*) FROM messages`)).toBe(2);
    expect(getMessageByWamid(t.db, 'wamid.HBgLMTU1NTU1NTAxMDEVAgASGBQzMjUzMkQ2NDM0RkRBNDAwOTZENQA=')).toMatchObject({ type: 'image', text: 'Foto vom Rezept' });
    // Statuses for messages we never sent from here are kept for when they appear.
    expect(count(`SELECT count(*) FROM message_statuses WHERE applied_at IS NULL`)).toBe(3);
  });

  it('is idempotent: a redelivered webhook stores one row per message and per (wamid, status)', () => {
    const m = sampleMessages().text!;
    const target = wamid('out');
    sentMessage(target);
    const value = { contacts: [contact()], messages: [m, reaction(m.id as string, '❤️', 1760000001)], statuses: [status(target, 'delivered', 1760000002)] };
    const first = apply(value);
    const second = apply(value);
    expect(first.newMessages).toHaveLength(1);
    expect(first.statusChanges).toHaveLength(1);
    expect(second.newMessages).toHaveLength(0);
    expect(second.statusChanges).toHaveLength(0);
    expect(second.reactionChanges).toHaveLength(0);
    expect(second.counts).toMatchObject({ duplicateMessages: 1, duplicateStatuses: 1 });
    expect(count('SELECT count(*) FROM messages WHERE wamid = ?', m.id)).toBe(1);
    expect(count('SELECT count(*) FROM message_statuses WHERE wamid = ?', target)).toBe(1);
    expect(count('SELECT count(*) FROM reactions')).toBe(1);
    expect(listConversations(t.db).items[0]!.unreadCount).toBe(1);
  });

  it('never moves a status backwards, whatever order the webhooks arrive in', () => {
    const a = wamid('a');
    const messageA = sentMessage(a);
    apply({ statuses: [status(a, 'read', 1760000300)] });
    apply({ statuses: [status(a, 'sent', 1760000100)] });
    apply({ statuses: [status(a, 'delivered', 1760000200)] });
    expect(getMessageByWamid(t.db, a)).toMatchObject({ id: messageA, status: 'read', status_at: 1760000300_000 });
    expect(listStatusHistory(t.db, a).map((s) => s.status)).toEqual(['sent', 'delivered', 'read']);

    // failed after sent: failed, with Meta's error; a late `sent` does not undo it.
    const b = wamid('b');
    sentMessage(b);
    const failed = apply({
      statuses: [status(b, 'failed', 1760090000, { errors: [{ code: 131047, title: 'Re-engagement message' }] }), status(b, 'sent', 1760080000)],
    });
    expect(failed.statusChanges.map((c) => c.status)).toEqual(['failed']);
    expect(getMessageByWamid(t.db, b)).toMatchObject({ status: 'failed', error_code: 131047, error_title: 'Re-engagement message' });

    // A stray failed after delivered is history only: the message demonstrably arrived.
    const c = wamid('c');
    sentMessage(c);
    apply({ statuses: [status(c, 'delivered', 1760000200)] });
    apply({ statuses: [status(c, 'failed', 1760000300, { errors: [{ code: 131000 }] })] });
    expect(getMessageByWamid(t.db, c)).toMatchObject({ status: 'delivered', error_code: null });
  });

  it('keeps a status that arrives before its message and applies it when the message gets its wamid', () => {
    const early = wamid('early');
    const r = apply({ statuses: [status(early, 'delivered', 1760000200), status(early, 'read', 1760000300)] });
    expect(r.counts.pendingStatuses).toBe(2);
    expect(r.statusChanges).toHaveLength(0);
    const id = sentMessage(early);
    expect(getMessageByWamid(t.db, early)).toMatchObject({ id, status: 'read' });
    expect(count('SELECT count(*) FROM message_statuses WHERE applied_at IS NULL')).toBe(0);
  });

  it('adds, replaces and removes reactions, and a late older reaction cannot bring a removed one back', () => {
    const target = sampleMessages().text!;
    apply({ contacts: [contact()], messages: [target] });
    const thread = () => listThread(t.db, { conversationId: listConversations(t.db).items[0]!.id }).items[0]!.reactions;
    apply({ messages: [reaction(target.id as string, '👍', 1760000010)] });
    expect(thread()).toEqual([{ emoji: '👍', fromBusiness: false }]);
    apply({ messages: [reaction(target.id as string, '🙏', 1760000020)] });
    expect(thread()).toEqual([{ emoji: '🙏', fromBusiness: false }]);
    apply({ messages: [reaction(target.id as string, undefined, 1760000030)] });
    expect(thread()).toEqual([]);
    apply({ messages: [reaction(target.id as string, '👍', 1760000015)] });
    expect(thread()).toEqual([]);
    expect(count('SELECT count(*) FROM messages')).toBe(1);
  });

  it('walks every entry, change, message and status of a batch, for several numbers, and counts what it ignores', () => {
    const one = sampleMessages().text!;
    const two = { ...sampleMessages().text!, from: '15555550202' };
    const body = webhookBody({ contacts: [contact('A')], messages: [one] });
    const entries = (body.entry as { changes: unknown[] }[])!;
    entries[0]!.changes.push({ field: 'message_template_status_update', value: { event: 'APPROVED' } });
    entries.push({
      id: 'other-waba',
      changes: [
        {
          field: 'messages',
          value: { messaging_product: 'whatsapp', metadata: { phone_number_id: '220000000000002' }, contacts: [contact('B', '15555550202')], messages: [two] },
        },
      ],
    } as never);
    const r = applyWebhook(t.db, WebhookSchema.parse(body), { receivedAt: 1 });
    expect(r.counts).toMatchObject({ messages: 2, ignoredChanges: 1 });
    expect(r.conversationIds).toHaveLength(2);
    expect(new Set(listConversations(t.db).items.map((c) => c.phoneNumberId))).toEqual(new Set([PHONE_NUMBER_ID, '220000000000002']));
  });

  it('files a sender known only by business-scoped user id, and joins the phone number to them later', () => {
    const m1 = { ...sampleMessages().text!, from: undefined, from_user_id: PATIENT_BSUID };
    apply({ contacts: [{ user_id: PATIENT_BSUID, profile: { name: 'Zoë', username: '@zoe' } }], messages: [m1] });
    const m2 = { ...sampleMessages().text!, from_user_id: PATIENT_BSUID };
    apply({ contacts: [contact('Zoë', PATIENT_WA_ID, PATIENT_BSUID)], messages: [m2] });
    expect(t.db.prepare('SELECT wa_id, user_id, username FROM contacts').all()).toEqual([{ wa_id: PATIENT_WA_ID, user_id: PATIENT_BSUID, username: '@zoe' }]);
    expect(listConversations(t.db).items[0]!.unreadCount).toBe(2);
  });

  it('gives a recycled number (same phone, new business-scoped id) a new contact and keeps the old history apart', () => {
    const first = { ...sampleMessages().text!, from_user_id: 'DE.111' };
    apply({ contacts: [contact('Erste Person', PATIENT_WA_ID, 'DE.111')], messages: [first] });
    const second = { ...sampleMessages().text!, from_user_id: 'DE.222' };
    apply({ contacts: [contact('Zweite Person', PATIENT_WA_ID, 'DE.222')], messages: [second] });
    expect(t.db.prepare('SELECT wa_id, user_id, profile_name FROM contacts ORDER BY id').all()).toEqual([
      { wa_id: null, user_id: 'DE.111', profile_name: 'Erste Person' },
      { wa_id: PATIENT_WA_ID, user_id: 'DE.222', profile_name: 'Zweite Person' },
    ]);
    expect(listConversations(t.db).items.map((c) => c.contactName).sort()).toEqual(['Erste Person', 'Zweite Person']);
  });

  it('never lends one contact\'s profile name to another sender', () => {
    const stranger = { ...sampleMessages().text!, from: '15555550999' };
    apply({ contacts: [contact('Zoë Müller')], messages: [stranger] });
    expect(t.db.prepare('SELECT wa_id, profile_name FROM contacts').all()).toEqual([{ wa_id: '15555550999', profile_name: null }]);
  });

  it('applies a batch all or nothing', () => {
    const [a, b] = [sampleMessages().text!, { ...sampleMessages().text!, id: 'wamid.BOOM' }];
    t.db.exec(`CREATE TEMP TRIGGER boom BEFORE INSERT ON main.messages WHEN new.wamid = 'wamid.BOOM' BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    expect(() => apply({ contacts: [contact()], messages: [a, b] })).toThrow('boom');
    expect(count('SELECT count(*) FROM messages')).toBe(0);
    expect(count('SELECT count(*) FROM contacts')).toBe(0);
  });

  it('tracks unread, the 24-hour window and reopens a resolved conversation when the patient writes', () => {
    const m = sampleMessages(1760000000).text!;
    apply({ contacts: [contact()], messages: [m] });
    const conv = listConversations(t.db).items[0]!;
    expect(conv).toMatchObject({ lastInboundAt: 1760000000_000, windowClosesAt: 1760000000_000 + 86_400_000, status: 'open' });
    setConversationStatus(t.db, conv.id, 'resolved', 2);
    expect(listConversations(t.db).items).toHaveLength(0);
    apply({ messages: [sampleMessages(1760000500).text!] });
    expect(listConversations(t.db).items[0]).toMatchObject({ id: conv.id, status: 'open', unreadCount: 2, lastInboundAt: 1760000500_000 });
  });

  it('normalizes without touching a database and skips nothing silently', () => {
    const noSender = { id: 'wamid.N', timestamp: '1', type: 'text', text: { body: 'x' } };
    // Exactly one contact in the change: the message can only be theirs.
    const one = normalizeWebhook(hook({ contacts: [contact()], messages: [noSender] }));
    expect(one.counts.unattributable).toBe(0);
    expect(one.messages[0]!.sender.waId).toBe(PATIENT_WA_ID);
    // Two (or none): nobody to file it under; shelved whole, counted.
    const two = normalizeWebhook(
      hook({ contacts: [contact(), contact('B', '15555550102')], messages: [noSender], errors: [{ code: 131000, title: 'x', error_data: { details: 'd' } }] }),
    );
    expect(two.counts.unattributable).toBe(1);
    expect(two.messages).toEqual([]);
    expect(two.shelved).toHaveLength(1);
    expect(two.shelved[0]!.reason).toBe('unattributable message');
    expect(two.valueErrors).toMatchObject([{ phoneNumberId: PHONE_NUMBER_ID, scope: 'value', code: 131000, title: 'x', details: 'd' }]);
  });
});
