import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InboundMessageSchema, KNOWN_MESSAGE_TYPES, MessagesValueSchema, StatusSchema, WebhookSchema, parseWebhookChanges } from './webhook';

const VECTORS = join(import.meta.dirname, '..', '..', 'tests', 'vectors', 'whatsapp');
const base = { from: '15555550101', id: 'wamid.T1', timestamp: '1760000000' };

/** One Meta-shaped message per type, after the Cloud API webhook reference. */
const MESSAGES: Record<string, Record<string, unknown>> = {
  text: { ...base, type: 'text', text: { body: 'Hallo' } },
  image: { ...base, type: 'image', image: { id: 'm1', mime_type: 'image/jpeg', sha256: 'x', caption: 'Rezept' } },
  audio: { ...base, type: 'audio', audio: { id: 'm2', mime_type: 'audio/ogg; codecs=opus', sha256: 'x', voice: true } },
  video: { ...base, type: 'video', video: { id: 'm3', mime_type: 'video/mp4', sha256: 'x' } },
  document: { ...base, type: 'document', document: { id: 'm4', mime_type: 'application/pdf', sha256: 'x', filename: 'befund.pdf' } },
  sticker: { ...base, type: 'sticker', sticker: { id: 'm5', mime_type: 'image/webp', sha256: 'x', animated: true } },
  location: { ...base, type: 'location', location: { latitude: 52.5, longitude: 13.4, name: 'Praxis', address: 'Hauptstr. 1' } },
  contacts: { ...base, type: 'contacts', contacts: [{ name: { formatted_name: 'Anna' }, phones: [{ phone: '+4930', wa_id: '4930', type: 'CELL' }] }] },
  button_reply: { ...base, type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Ja' } } },
  list_reply: { ...base, type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: 's', title: 'Di 10:00', description: 'Dr. W' } } },
  nfm_reply: { ...base, type: 'interactive', interactive: { type: 'nfm_reply', nfm_reply: { name: 'flow', body: 'Sent', response_json: '{}' } } },
  button: { ...base, type: 'button', button: { payload: 'CONFIRM', text: 'Ja, ich komme' } },
  reaction: { ...base, type: 'reaction', reaction: { message_id: 'wamid.X', emoji: '👍' } },
  reaction_removed: { ...base, type: 'reaction', reaction: { message_id: 'wamid.X', emoji: '' } },
  system: { ...base, type: 'system', system: { body: 'User changed number', wa_id: '15555550199', type: 'user_changed_number' } },
  order: { ...base, type: 'order', order: { catalog_id: 'c', text: 't', product_items: [] } },
  unsupported: { ...base, type: 'unsupported', errors: [{ code: 131051, title: 'Message type unknown' }], unsupported: { type: 'poll' } },
  context: { ...base, type: 'text', text: { body: 'Re' }, context: { from: '15550001234', id: 'wamid.Q', forwarded: true, referred_product: { catalog_id: 'c', product_retailer_id: 'p' } } },
  referral: { ...base, type: 'text', text: { body: 'Ad' }, referral: { source_url: 'u', source_id: 'i', source_type: 'ad', headline: 'h', body: 'b', media_type: 'image', ctwa_clid: 'c' } },
  bsuid_only: { id: 'wamid.T2', timestamp: '1760000000', from_user_id: 'DE.1502576394655843', type: 'text', text: { body: 'Hi' } },
};

describe('WhatsApp webhook schemas', () => {
  it('parses every reference payload in the shared vectors, with every change as a messages value', () => {
    const files = readdirSync(VECTORS).filter((f) => f.endsWith('.json') && f !== 'signature.json');
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) {
      const hook = WebhookSchema.parse(JSON.parse(readFileSync(join(VECTORS, f), 'utf8')));
      const changes = parseWebhookChanges(hook);
      expect(changes.map((c) => c.kind), f).toEqual(['messages']);
    }
  });

  it.each(Object.entries(MESSAGES))('parses a %s message as its own known shape', (name, message) => {
    const parsed = InboundMessageSchema.parse(message);
    expect('unrecognised' in parsed, name).toBe(false);
    expect(KNOWN_MESSAGE_TYPES).toContain(parsed.type);
  });

  it('keeps a future message type and a malformed known type through the catch-all, with every field', () => {
    const future = InboundMessageSchema.parse({ ...base, type: 'hologram', hologram: { frames: 3 } });
    expect(future).toMatchObject({ type: 'hologram', unrecognised: true, hologram: { frames: 3 } });
    const malformed = InboundMessageSchema.parse({ ...base, type: 'text', text: { no_body: true } });
    expect(malformed).toMatchObject({ type: 'text', unrecognised: true });
  });

  it('lets fields Meta adds pass through untouched', () => {
    const parsed = InboundMessageSchema.parse({ ...MESSAGES.text, new_field: { a: 1 }, text: { body: 'x', spoiler: true } });
    expect(parsed).toMatchObject({ new_field: { a: 1 }, text: { body: 'x', spoiler: true } });
  });

  it('accepts senders and recipients by business-scoped user id without a phone number', () => {
    const value = MessagesValueSchema.parse({
      messaging_product: 'whatsapp',
      metadata: { phone_number_id: '1' },
      contacts: [{ user_id: 'DE.1502576394655843', profile: { name: 'Zoë', username: '@zoe' } }],
      messages: [MESSAGES.bsuid_only],
      statuses: [{ id: 'wamid.S', status: 'delivered', timestamp: '1760000000', recipient_user_id: 'DE.1502576394655843' }],
    });
    expect(value.contacts?.[0]?.wa_id).toBeUndefined();
    expect(value.messages?.[0]?.from).toBeUndefined();
    expect(value.statuses?.[0]?.recipient_id).toBeUndefined();
  });

  it('parses statuses with errors, conversation and pricing, and unknown status values', () => {
    for (const status of ['sent', 'delivered', 'read', 'played', 'failed', 'something_new']) {
      expect(StatusSchema.parse({ id: 'w', status, timestamp: '1', recipient_id: '1' }).status).toBe(status);
    }
    const failed = StatusSchema.parse({
      id: 'w',
      status: 'failed',
      timestamp: '1',
      errors: [{ code: 131047, title: 'Re-engagement message', error_data: { details: 'd' } }],
      conversation: { id: 'c', origin: { type: 'utility' } },
      pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
    });
    expect(failed.errors?.[0]?.code).toBe(131047);
  });

  it('routes other fields as ignored and a broken messages change as invalid, without failing the batch', () => {
    const hook = WebhookSchema.parse({
      object: 'whatsapp_business_account',
      entry: [
        { id: '1', changes: [{ field: 'account_update', value: { event: 'X' } }] },
        {
          id: '2',
          changes: [
            { field: 'messages', value: { metadata: { phone_number_id: '1' }, messages: [{ type: 'text' }] } },
            { field: 'messages', value: { metadata: { phone_number_id: '1' }, errors: [{ code: 131000, title: 'x' }] } },
          ],
        },
      ],
    });
    const changes = parseWebhookChanges(hook);
    expect(changes.map((c) => c.kind)).toEqual(['ignored', 'invalid', 'messages']);
    const invalid = changes[1];
    expect(invalid?.kind === 'invalid' && invalid.issues.join()).toContain('messages.0');
  });
});
