import {
  KNOWN_MESSAGE_TYPES,
  parseWebhookChanges,
  type InboundMessage,
  type KnownMessage,
  type MessagesValue,
  type Status,
  type Webhook,
  type WebhookContact,
  type WebhookError,
} from '../../../shared/whatsapp/webhook';

/** Who a message or status concerns: a phone-number id, a business-scoped user id, or both. */
export interface UserRef {
  waId: string | null;
  userId: string | null;
}

export interface NormalizedContact extends UserRef {
  parentUserId: string | null;
  profileName: string | null;
  username: string | null;
}

export type UnsupportedReason = 'meta_unsupported' | 'unknown_type' | 'malformed';

export interface NormalizedMessage {
  phoneNumberId: string;
  wamid: string;
  sender: NormalizedContact;
  /** Stored type: Meta's type for a shape we know, `unsupported` for anything else. */
  type: string;
  /** The searchable text: body, caption, button title, location name, … */
  text: string | null;
  /** The message exactly as parsed (every field Meta sent, known or not). */
  content: Record<string, unknown>;
  contextWamid: string | null;
  mediaId: string | null;
  media: { mimeType: string | null; sha256: string | null; filename: string | null } | null;
  sentAt: number;
  unsupported: UnsupportedReason | null;
  /** `system` messages that change who the contact is (new number, new BSUID). */
  identityChange: IdentityChange | null;
}

/**
 * The ids a `system` message says the sender has now, and the BSUIDs it had before. Null fields
 * are not mentioned by the message and stay as they are.
 */
export interface IdentityChange {
  previousUserId: string | null;
  previousParentUserId: string | null;
  waId: string | null;
  userId: string | null;
  parentUserId: string | null;
}

export interface NormalizedReaction {
  phoneNumberId: string;
  reactionWamid: string;
  sender: NormalizedContact;
  targetWamid: string;
  /** Empty string: the sender removed their reaction. */
  emoji: string;
  reactedAt: number;
}

export interface NormalizedStatus {
  phoneNumberId: string;
  wamid: string;
  status: string;
  statusAt: number;
  recipient: UserRef;
  errorCode: number | null;
  errorTitle: string | null;
  raw: Status;
}

export interface NormalizedWebhook {
  messages: NormalizedMessage[];
  reactions: NormalizedReaction[];
  statuses: NormalizedStatus[];
  /** Value-level errors (not tied to a message): code and title only. */
  valueErrors: { phoneNumberId: string; code: number; title: string | null }[];
  counts: {
    /** Changes whose `field` is not `messages` (account, template, quality updates, …). */
    ignoredChanges: number;
    ignoredByField: Record<string, number>;
    /** `messages` changes that did not parse at all; their issue paths are in `invalidIssues`. */
    invalidChanges: number;
    /** Messages with neither `from` nor `from_user_id`: nobody to file them under. */
    unattributable: number;
  };
  invalidIssues: string[];
}

const toMs = (ts: string | number): number => Number(ts) * 1000;
const firstError = (errors: WebhookError[] | undefined) => errors?.[0];

function textOf(m: KnownMessage): string | null {
  switch (m.type) {
    case 'text':
      return m.text.body;
    case 'image':
      return m.image.caption ?? null;
    case 'video':
      return m.video.caption ?? null;
    case 'document':
      return [m.document.caption, m.document.filename].filter(Boolean).join('\n') || null;
    case 'audio':
    case 'sticker':
    case 'reaction':
    case 'unsupported':
      return null;
    case 'location':
      return [m.location.name, m.location.address].filter(Boolean).join('\n') || null;
    case 'contacts':
      return m.contacts.map((c) => c.name?.formatted_name).filter(Boolean).join(', ') || null;
    case 'interactive': {
      const i = m.interactive;
      if (i.button_reply) return i.button_reply.title;
      if (i.list_reply) return [i.list_reply.title, i.list_reply.description].filter(Boolean).join('\n');
      if (i.nfm_reply) return i.nfm_reply.body ?? null;
      return null;
    }
    case 'button':
      return m.button.text;
    case 'system':
      return m.system.body ?? null;
    case 'order':
      return m.order.text ?? null;
  }
}

function mediaOf(m: KnownMessage): NormalizedMessage['media'] & { id: string } | null {
  switch (m.type) {
    case 'image':
    case 'video':
    case 'audio':
    case 'sticker': {
      const o = m.type === 'image' ? m.image : m.type === 'video' ? m.video : m.type === 'audio' ? m.audio : m.sticker;
      return { id: o.id, mimeType: o.mime_type ?? null, sha256: o.sha256 ?? null, filename: null };
    }
    case 'document':
      return { id: m.document.id, mimeType: m.document.mime_type ?? null, sha256: m.document.sha256 ?? null, filename: m.document.filename ?? null };
    default:
      return null;
  }
}

/**
 * Finds the `contacts[]` entry describing a sender, matched on either id. Never by position: a
 * value whose only contact is someone else must not lend that person's name to this sender.
 */
function senderOf(ref: UserRef, contacts: WebhookContact[] | undefined): NormalizedContact {
  const match = contacts?.find((c) => (ref.userId && c.user_id === ref.userId) || (ref.waId && c.wa_id === ref.waId));
  return {
    waId: ref.waId ?? match?.wa_id ?? null,
    userId: ref.userId ?? match?.user_id ?? null,
    parentUserId: match?.parent_user_id ?? null,
    profileName: match?.profile?.name ?? null,
    username: match?.profile?.username ?? null,
  };
}

const IDENTITY_CHANGE_TYPES = new Set(['user_changed_number', 'customer_changed_number', 'user_changed_user_id']);

function identityChangeOf(system: Extract<KnownMessage, { type: 'system' }>['system']): IdentityChange | null {
  if (!IDENTITY_CHANGE_TYPES.has(system.type ?? '')) return null;
  const waId = system.wa_id ?? (system.new_wa_id === undefined ? null : String(system.new_wa_id));
  const change: IdentityChange = {
    previousUserId: system.previous_user_id ?? null,
    previousParentUserId: system.previous_parent_user_id ?? null,
    waId: waId && /^\d{6,20}$/.test(waId) ? waId : null,
    userId: system.user_id ?? null,
    parentUserId: system.parent_user_id ?? null,
  };
  return change.waId || change.userId || change.parentUserId ? change : null;
}

function withoutMarker(m: InboundMessage): Record<string, unknown> {
  if ('unrecognised' in m) {
    const { unrecognised: _drop, ...rest } = m;
    return rest;
  }
  return m as Record<string, unknown>;
}

function normalizeValue(value: MessagesValue, out: NormalizedWebhook): void {
  const phoneNumberId = value.metadata.phone_number_id;
  for (const e of value.errors ?? []) out.valueErrors.push({ phoneNumberId, code: e.code, title: e.title ?? e.message ?? null });

  for (const m of value.messages ?? []) {
    // An identity notice names the user by the BSUID it replaces, even where it lacks a sender.
    const previousUserId = !('unrecognised' in m) && m.type === 'system' ? (m.system.previous_user_id ?? null) : null;
    const ref: UserRef = { waId: m.from ?? null, userId: m.from_user_id ?? previousUserId };
    if (!ref.waId && !ref.userId) {
      out.counts.unattributable += 1;
      continue;
    }
    const sender = senderOf(ref, value.contacts);
    const sentAt = toMs(m.timestamp);
    if (!('unrecognised' in m) && m.type === 'reaction') {
      out.reactions.push({
        phoneNumberId,
        reactionWamid: m.id,
        sender,
        targetWamid: m.reaction.message_id,
        emoji: m.reaction.emoji ?? '',
        reactedAt: sentAt,
      });
      continue;
    }
    const base = {
      phoneNumberId,
      wamid: m.id,
      sender,
      content: withoutMarker(m),
      contextWamid: m.context?.id ?? null,
      sentAt,
    };
    if ('unrecognised' in m) {
      const known = (KNOWN_MESSAGE_TYPES as readonly string[]).includes(m.type);
      out.messages.push({
        ...base,
        type: 'unsupported',
        text: null,
        mediaId: null,
        media: null,
        unsupported: known ? 'malformed' : 'unknown_type',
        identityChange: null,
      });
      continue;
    }
    const media = mediaOf(m);
    out.messages.push({
      ...base,
      type: m.type,
      text: textOf(m),
      mediaId: media?.id ?? null,
      media: media ? { mimeType: media.mimeType, sha256: media.sha256, filename: media.filename } : null,
      unsupported: m.type === 'unsupported' ? 'meta_unsupported' : null,
      identityChange: m.type === 'system' ? identityChangeOf(m.system) : null,
    });
  }

  for (const s of value.statuses ?? []) {
    const err = firstError(s.errors);
    out.statuses.push({
      phoneNumberId,
      wamid: s.id,
      status: s.status,
      statusAt: toMs(s.timestamp),
      recipient: { waId: s.recipient_id ?? null, userId: s.recipient_user_id ?? null },
      errorCode: err?.code ?? null,
      errorTitle: err ? (err.title ?? err.message ?? null) : null,
      raw: s,
    });
  }
}

/**
 * Pure: a parsed webhook → what it says, flattened. Every entry, change, message and status is
 * visited (never only `[0]`); anything not ingested is counted, not silently lost.
 */
export function normalizeWebhook(webhook: Webhook): NormalizedWebhook {
  const out: NormalizedWebhook = {
    messages: [],
    reactions: [],
    statuses: [],
    valueErrors: [],
    counts: { ignoredChanges: 0, ignoredByField: Object.create(null) as Record<string, number>, invalidChanges: 0, unattributable: 0 },
    invalidIssues: [],
  };
  for (const change of parseWebhookChanges(webhook)) {
    if (change.kind === 'messages') normalizeValue(change.value, out);
    else if (change.kind === 'ignored') {
      out.counts.ignoredChanges += 1;
      out.counts.ignoredByField[change.field] = (out.counts.ignoredByField[change.field] ?? 0) + 1;
    } else {
      out.counts.invalidChanges += 1;
      out.invalidIssues.push(...change.issues);
    }
  }
  return out;
}
