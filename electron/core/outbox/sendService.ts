import { createHash } from 'node:crypto';
import { CodedError } from '../../../shared/errors';
import { enqueueJob, enqueueOutbound } from '../db/repo/outbox';
import { holdCheckpoints, mediaSendHold } from '../db/checkpoints';
import { insertOutboundMedia } from '../db/repo/media';
import { clinicReaction, setClinicReaction } from '../db/repo/reactions';
import { getTemplate, renderTemplateBody, templatePlaceholders } from '../db/repo/templates';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { addresseeOf, type Addressee, type TemplateComponent } from '../graph/schemas';
import { MEDIA_MAX_BYTES, baseMimeType, mediaKindForMime } from '../media/limits';
import { assertTemplateAllowed } from '../privacy/consent';
import { REACTION_MAX_AGE_MS, customerServiceWindow, type CustomerServiceWindow } from '../window';

/**
 * What the RPC handlers call to send. Each function validates against the conversation and the
 * 24-hour window, then stores the message (`pending`) and its outbox row in one transaction and
 * returns at once; the outbox worker does the network part. Call `worker.kick()` afterwards.
 */

export interface Enqueued {
  messageId: number;
  outboxId: string;
}

interface ConversationTarget {
  id: number;
  contactId: number;
  phoneNumberId: string;
  /** `to` the phone number when the patient shared one, else `recipient` their business-scoped user id. */
  address: Addressee;
  lastInboundAt: number | null;
}

function target(db: Database, conversationId: number): ConversationTarget {
  const row = stmt(
    db,
    `SELECT c.id, c.contact_id, c.phone_number_id, c.last_inbound_at, k.wa_id, k.user_id
       FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = ?`,
  ).get(conversationId) as
    | { id: number; contact_id: number; phone_number_id: string; last_inbound_at: number | null; wa_id: string | null; user_id: string | null }
    | undefined;
  if (!row) throw new CodedError('NOT_FOUND', `Conversation ${conversationId} does not exist.`);
  // Read fresh at every send: an identity change (new number or BSUID) applies to the next reply.
  const address = addresseeOf({ waId: row.wa_id, userId: row.user_id });
  if (!address) {
    throw new CodedError('VALIDATION_FAILED', `Conversation ${conversationId} has no WhatsApp id that Meta accepts as a recipient.`);
  }
  return { id: row.id, contactId: row.contact_id, phoneNumberId: row.phone_number_id, address, lastInboundAt: row.last_inbound_at };
}

/** The window for a conversation, for the UI ("closes in 3 h") and the send checks. */
export function conversationWindow(db: Database, conversationId: number, now: number): CustomerServiceWindow {
  const row = stmt(db, 'SELECT last_inbound_at FROM conversations WHERE id = ?').get(conversationId) as { last_inbound_at: number | null } | undefined;
  if (!row) throw new CodedError('NOT_FOUND', `Conversation ${conversationId} does not exist.`);
  return customerServiceWindow(row.last_inbound_at, now);
}

function requireOpenWindow(
  t: ConversationTarget,
  now: number,
  message = 'More than 24 hours have passed since the patient last wrote, so WhatsApp only allows an approved template. Choose a template to reopen the conversation.',
): void {
  if (!customerServiceWindow(t.lastInboundAt, now).open) throw new CodedError('WINDOW_CLOSED', message);
}

function replyContext(db: Database, conversationId: number, replyToMessageId: number | undefined): string | null {
  if (replyToMessageId === undefined) return null;
  const row = stmt(db, 'SELECT wamid FROM messages WHERE id = ? AND conversation_id = ?').get(replyToMessageId, conversationId) as { wamid: string | null } | undefined;
  if (!row) throw new CodedError('NOT_FOUND', `Message ${replyToMessageId} is not in conversation ${conversationId}.`);
  if (!row.wamid) throw new CodedError('VALIDATION_FAILED', 'That message has not reached WhatsApp yet, so it cannot be replied to.');
  return row.wamid;
}

export function sendText(
  db: Database,
  p: { conversationId: number; text: string; replyToMessageId?: number; authorUserId?: string | null; now: number },
): Enqueued {
  const body = p.text.trim();
  if (body.length === 0 || body.length > 4096) throw new CodedError('VALIDATION_FAILED', 'A WhatsApp text message holds 1 to 4096 characters.');
  const t = target(db, p.conversationId);
  requireOpenWindow(t, p.now);
  const contextWamid = replyContext(db, t.id, p.replyToMessageId);
  const context = contextWamid ? { context: { message_id: contextWamid } } : {};
  return enqueueOutbound(
    db,
    { conversationId: t.id, type: 'text', text: body, content: { type: 'text', text: { body }, ...context }, contextWamid, authorUserId: p.authorUserId ?? null, now: p.now },
    () => ({
      kind: 'message',
      phoneNumberId: t.phoneNumberId,
      request: { messaging_product: 'whatsapp', recipient_type: 'individual', ...t.address, type: 'text', text: { body, preview_url: false }, ...context },
    }),
  );
}

/** Templates go out whether or not the window is open (that is what they are for), but never to a patient who opted out. */
export function sendTemplate(
  db: Database,
  p: { conversationId: number; name: string; language: string; parameters: readonly string[]; authorUserId?: string | null; now: number },
): Enqueued {
  const t = target(db, p.conversationId);
  // A patient who opted out gets no template (marketing or utility) until a new opt-in is recorded.
  assertTemplateAllowed(db, t.id);
  const template = getTemplate(db, p.name, p.language);
  if (!template) throw new CodedError('NOT_FOUND', `No template "${p.name}" in language ${p.language}; sync templates first.`);
  if (template.status !== 'APPROVED') throw new CodedError('VALIDATION_FAILED', `Template "${p.name}" is ${template.status} at Meta and cannot be sent.`);
  const names = templatePlaceholders(template.bodyText);
  if (p.parameters.length !== names.length) {
    throw new CodedError('VALIDATION_FAILED', `Template "${p.name}" needs ${names.length} values, got ${p.parameters.length}.`);
  }
  if (p.parameters.some((v) => v.trim().length === 0)) throw new CodedError('VALIDATION_FAILED', 'Template values may not be empty.');
  const components: TemplateComponent[] =
    names.length === 0
      ? []
      : [
          {
            type: 'body',
            parameters: p.parameters.map((text, i) => ({
              type: 'text' as const,
              text,
              // Named placeholders ({{first_name}}) must be named in the request; numbered ones not.
              ...(/^\d+$/.test(names[i]!) ? {} : { parameter_name: names[i]! }),
            })),
          },
        ];
  const text = renderTemplateBody(template.bodyText, p.parameters);
  return enqueueOutbound(
    db,
    {
      conversationId: t.id,
      type: 'template',
      text,
      content: { type: 'template', template: { name: p.name, language: p.language, parameters: p.parameters } },
      contextWamid: null,
      authorUserId: p.authorUserId ?? null,
      now: p.now,
    },
    () => ({
      kind: 'message',
      phoneNumberId: t.phoneNumberId,
      request: {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        ...t.address,
        type: 'template',
        template: { name: p.name, language: { code: p.language }, ...(components.length ? { components: components.map((c) => ({ ...c, parameters: c.parameters ?? [] })) } : {}) },
      },
    }),
  );
}

export interface MediaSendInput {
  conversationId: number;
  bytes: Buffer;
  mimeType: string;
  filename?: string;
  caption?: string;
  replyToMessageId?: number;
  authorUserId?: string | null;
  now: number;
}

/**
 * A file from the clinic: checked against WhatsApp's types and limits, stored encrypted, then
 * queued, in one transaction (a send that needs no other thread: tests, and the core when the
 * writer thread is unavailable).
 */
export function sendMedia(db: Database, p: MediaSendInput): Enqueued {
  return enqueueMedia(db, p, { bytes: p.bytes, sha256Hex: createHash('sha256').update(p.bytes).digest('hex') });
}

/**
 * The same checks and rows as `sendMedia`, but the media row stays `pending`, without the bytes:
 * the caller writes them with `storeOutboundContent` (on another connection, while the outbox
 * uploads the copy in memory) and must not report the send as done before that commit.
 */
export function queueMediaSend(db: Database, p: MediaSendInput): Enqueued & QueuedFile {
  let file: QueuedFile | null = null;
  const enqueued = enqueueMedia(db, p, null, (f) => (file = f));
  return { ...enqueued, ...file! };
}

/** What the upload of a queued file needs besides its bytes: the names the outbox would read back from its row. */
export interface QueuedFile {
  mediaRowId: number;
  /** The clinic's number the message goes out from (Meta keeps uploads per number). */
  phoneNumberId: string;
  mimeType: string;
  filename: string | null;
}

function enqueueMedia(db: Database, p: MediaSendInput, content: { bytes: Buffer; sha256Hex: string } | null, onRow?: (file: QueuedFile) => void): Enqueued {
  const mimeType = baseMimeType(p.mimeType);
  const kind = mediaKindForMime(mimeType);
  if (!kind) throw new CodedError('VALIDATION_FAILED', `WhatsApp does not accept files of type ${mimeType.slice(0, 100)}.`);
  if (p.bytes.length === 0) throw new CodedError('VALIDATION_FAILED', 'The file is empty.');
  if (p.bytes.length > MEDIA_MAX_BYTES[kind]) {
    throw new CodedError('VALIDATION_FAILED', `WhatsApp accepts ${kind} files up to ${MEDIA_MAX_BYTES[kind]} bytes; this one has ${p.bytes.length}.`);
  }
  const caption = p.caption?.trim() || undefined;
  if (caption && (kind === 'audio' || kind === 'sticker')) throw new CodedError('VALIDATION_FAILED', `A ${kind} cannot carry a caption.`);
  const t = target(db, p.conversationId);
  requireOpenWindow(t, p.now);
  const contextWamid = replyContext(db, t.id, p.replyToMessageId);
  const filename = kind === 'document' ? (p.filename ?? 'document') : (p.filename ?? null);
  return enqueueOutbound(
    db,
    {
      conversationId: t.id,
      type: kind,
      text: caption ?? (kind === 'document' ? filename : null),
      // The hash joins the content when the bytes are stored (`storeOutboundContent`).
      content: { type: kind, [kind]: { mime_type: mimeType, ...(content ? { sha256: content.sha256Hex } : {}), ...(caption ? { caption } : {}), ...(filename ? { filename } : {}) } },
      contextWamid,
      authorUserId: p.authorUserId ?? null,
      now: p.now,
    },
    (messageId) => {
      const mediaRowId = insertOutboundMedia(db, { messageId, size: p.bytes.length, mimeType, filename, now: p.now, ...(content ? { content } : {}) });
      onRow?.({ mediaRowId, phoneNumberId: t.phoneNumberId, mimeType, filename });
      // Before the commit: the file's pages must not be checkpointed on the way to the first tick.
      holdCheckpoints(db, mediaSendHold(mediaRowId));
      return {
        kind: 'media',
        phoneNumberId: t.phoneNumberId,
        // The media job keeps one addressee string (phone number or BSUID, never confused: see
        // `addresseeFromId`); the worker turns it back into `to` or `recipient`.
        to: t.address.to ?? t.address.recipient,
        mediaRowId,
        mediaKind: kind,
        ...(caption ? { caption } : {}),
        ...(kind === 'document' && filename ? { filename } : {}),
        ...(contextWamid ? { replyToWamid: contextWamid } : {}),
      };
    },
  );
}

/**
 * Tells WhatsApp the patient's newest message was read (blue ticks; Meta marks the earlier ones
 * too) and clears the unread count. Nothing is queued when the patient has not written yet.
 */
export function markRead(db: Database, p: { conversationId: number; now: number }): { queued: boolean } {
  const t = stmt(db, 'SELECT id, phone_number_id FROM conversations WHERE id = ?').get(p.conversationId) as { id: number; phone_number_id: string } | undefined;
  if (!t) throw new CodedError('NOT_FOUND', `Conversation ${p.conversationId} does not exist.`);
  return db.transaction(() => {
    stmt(db, 'UPDATE conversations SET unread_count = 0, updated_at = ? WHERE id = ?').run(p.now, t.id);
    const last = stmt(
      db,
      `SELECT wamid FROM messages WHERE conversation_id = ? AND direction = 'inbound' AND wamid IS NOT NULL ORDER BY sent_at DESC, id DESC LIMIT 1`,
    ).get(t.id) as { wamid: string } | undefined;
    if (!last) return { queued: false };
    const already = stmt(db, `SELECT 1 FROM outbox WHERE kind = 'read' AND state IN ('queued', 'sending', 'sent') AND json_extract(request_json, '$.wamid') = ?`).get(last.wamid);
    if (already) return { queued: false };
    enqueueJob(db, { kind: 'read', phoneNumberId: t.phone_number_id, wamid: last.wamid }, p.now);
    return { queued: true };
  })();
}

/** One emoji (a single grapheme drawn as a picture: 👍, ❤️, 👍🏽, 🇳🇱, 1️⃣), or empty to remove. */
function isOneEmoji(value: string): boolean {
  const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(value)];
  return graphemes.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u.test(value);
}

/**
 * The clinic's reaction to one of the patient's messages; an empty `emoji` removes it. The
 * clinic has one reaction per message (a new one replaces it). Meta's rules are checked here,
 * so the receptionist hears at once what WhatsApp would refuse later: only messages the patient
 * sent, not deleted, at most 30 days old, and (a reaction being a free-form message) only while
 * the 24-hour window is open. The reaction shows at once as pending; the outbox sends it. While a
 * send of this message's reaction is still queued, no second job is queued: that one sends the
 * latest choice. `queued: false` when nothing changed (the same emoji again, or removing none).
 */
export function react(
  db: Database,
  p: { conversationId: number; messageId: number; emoji: string; authorUserId?: string | null; now: number },
): { queued: boolean } {
  const emoji = p.emoji.trim();
  if (emoji !== '' && (emoji.length > 16 || !isOneEmoji(emoji))) {
    throw new CodedError('VALIDATION_FAILED', 'A reaction is one emoji (or none, to remove it).');
  }
  const t = target(db, p.conversationId);
  const m = stmt(db, 'SELECT id, wamid, direction, type, sent_at, revoked_at FROM messages WHERE id = ? AND conversation_id = ?').get(p.messageId, t.id) as
    | { id: number; wamid: string | null; direction: string; type: string; sent_at: number; revoked_at: number | null }
    | undefined;
  if (!m) throw new CodedError('NOT_FOUND', `Message ${p.messageId} is not in conversation ${p.conversationId}.`);
  if (m.direction !== 'inbound' || !m.wamid || m.type === 'system' || m.type === 'call') {
    throw new CodedError('REACTION_NOT_ALLOWED', 'WhatsApp lets the clinic react only to messages the patient sent.');
  }
  if (m.revoked_at !== null) throw new CodedError('REACTION_NOT_ALLOWED', 'The patient deleted this message, so it cannot be reacted to.');
  if (p.now - m.sent_at > REACTION_MAX_AGE_MS) {
    throw new CodedError('REACTION_NOT_ALLOWED', 'WhatsApp does not deliver reactions to messages older than 30 days.');
  }
  requireOpenWindow(
    t,
    p.now,
    'More than 24 hours have passed since the patient last wrote, so WhatsApp allows no reaction, only an approved template. Choose a template to reopen the conversation.',
  );
  const targetWamid = m.wamid;
  return db.transaction(() => {
    const current = clinicReaction(db, targetWamid);
    const showing = current?.emoji ?? '';
    if (emoji === showing && current?.status !== 'failed') return { queued: false };
    setClinicReaction(db, { targetWamid, contactId: t.contactId, emoji, authorUserId: p.authorUserId ?? null, now: p.now });
    const waiting = stmt(db, `SELECT 1 FROM outbox WHERE kind = 'reaction' AND state = 'queued' AND message_id = ?`).get(m.id);
    if (!waiting) {
      enqueueJob(db, { kind: 'reaction', phoneNumberId: t.phoneNumberId, to: t.address.to ?? t.address.recipient, targetWamid }, p.now, m.id);
    }
    return { queued: true };
  })();
}
