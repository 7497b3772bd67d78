/**
 * Test helpers for Meta's side of the webhook.
 * - `signWebhook(body, appSecret)` → the `X-Hub-Signature-256` header value over the exact bytes.
 * - `metaJson(value)` → compact JSON the way Meta sends it: non-ASCII as `\uXXXX`, `/` as `\/`.
 *   Signatures must hold over those bytes, never over a re-serialisation.
 * - `textMessageWebhook({phoneNumberId, wamid, text, from?, entryId?})` and
 *   `statusWebhook({phoneNumberId, wamid, status})` → webhook objects in Meta's documented shapes.
 * - `reactionChange({phoneNumberId, wamid, reactsTo, emoji})` → a reaction (emoji "" removes it).
 * - `batchWebhook(changes[])` → one body with one entry per phone number (as Meta batches).
 */
import { createHmac } from 'node:crypto';

export function signWebhook(body: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

export function metaJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\//g, '\\/')
    .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface WebhookChange {
  field: string;
  value: Record<string, unknown> & { metadata: { display_phone_number: string; phone_number_id: string } };
}

/** One inbound message from a patient, with the contact it names, in a change of Meta's shape. */
function inboundChange(args: { phoneNumberId: string; from?: string; name?: string }, message: Record<string, unknown>): WebhookChange {
  const from = args.from ?? '15555550101';
  return {
    field: 'messages',
    value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001234', phone_number_id: args.phoneNumberId },
      contacts: [{ profile: { name: args.name ?? 'Maria Muster' }, wa_id: from }],
      messages: [{ from, ...message }],
    },
  };
}

export function textMessageChange(args: { phoneNumberId: string; wamid: string; text: string; from?: string; name?: string; timestamp?: number }): WebhookChange {
  return inboundChange(args, { id: args.wamid, timestamp: String(args.timestamp ?? 1760000000), type: 'text', text: { body: args.text } });
}

export function statusChange(args: { phoneNumberId: string; wamid: string; status: 'sent' | 'delivered' | 'read' | 'failed'; recipient?: string; timestamp?: number }): WebhookChange {
  return {
    field: 'messages',
    value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001234', phone_number_id: args.phoneNumberId },
      statuses: [
        { id: args.wamid, status: args.status, timestamp: String(args.timestamp ?? 1760000001), recipient_id: args.recipient ?? '15555550101' },
      ],
    },
  };
}

/** A reaction as Meta sends it: its own message id, the reacted-to message, and `emoji: ""` when removed. */
export function reactionChange(args: { phoneNumberId: string; wamid: string; reactsTo: string; emoji: string; from?: string; timestamp?: number }): WebhookChange {
  return inboundChange(args, { id: args.wamid, timestamp: String(args.timestamp ?? 1760000002), type: 'reaction', reaction: { message_id: args.reactsTo, emoji: args.emoji } });
}

export function batchWebhook(changes: WebhookChange[], entryId = '100000000000001'): { object: string; entry: { id: string; changes: WebhookChange[] }[] } {
  return { object: 'whatsapp_business_account', entry: [{ id: entryId, changes }] };
}

export function textMessageWebhook(args: Parameters<typeof textMessageChange>[0]) {
  return batchWebhook([textMessageChange(args)]);
}
