import {
  KNOWN_MESSAGE_TYPES,
  parseWebhookChanges,
  type InboundMessage,
  type CallsValue,
  type KnownMessage,
  type MessageEchoesValue,
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
  /** `outbound` for an echo of what the clinic sent from its phone (`origin: 'phone'`). */
  direction: 'inbound' | 'outbound';
  origin: 'phone' | null;
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
  /** A reaction the clinic sent from its phone (an echo). */
  fromBusiness?: boolean;
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

/** An edit or a revoke (deletion for everyone) of an earlier message, by its wamid. */
export interface NormalizedRevision {
  phoneNumberId: string;
  /** The edit or revoke event's own wamid: what makes a redelivery recognisable. */
  eventWamid: string;
  originalWamid: string;
  kind: 'edit' | 'revoke';
  sender: NormalizedContact;
  /** `outbound`: the clinic changed its own message on its phone (an echo). */
  direction: 'inbound' | 'outbound';
  /** The new text or caption (edit only). */
  text: string | null;
  /** The new version as Meta sent it (edit only). */
  content: Record<string, unknown> | null;
  at: number;
}

/** A call event (`calls` field): one line in the thread per call id, updated as the call goes on. */
export interface NormalizedCall {
  phoneNumberId: string;
  callId: string;
  sender: NormalizedContact;
  direction: 'inbound' | 'outbound';
  /** What the thread shows: the latest of these wins (`connect` < status update < `terminate`). */
  call: { event: string; status: string | null; durationSeconds: number | null; direction: string | null };
  at: number;
}

/** Something a delivery held that could not be filed: kept whole (encrypted) and counted. */
export interface NormalizedShelf {
  reason: string;
  /** A webhook body holding only this item, so a later version can ingest it as it came. */
  payload: Record<string, unknown>;
}

export interface NormalizedError {
  phoneNumberId: string;
  /** Where Meta put it: `value` (the change's own `errors`), `call`. */
  scope: string;
  code: number;
  title: string | null;
  message: string | null;
  details: string | null;
  href: string | null;
  /** What makes a redelivery of the same error recognisable (the change's entry and the error). */
  key: string;
}

/** The `dead_letters.reason` of a message with no sender to file it under. */
export const UNATTRIBUTABLE = 'unattributable message';
/** The `dead_letters.reason` prefix of a change whose field this version does not ingest. */
export const IGNORED_FIELD = 'ignored field: ';

export interface NormalizedWebhook {
  messages: NormalizedMessage[];
  reactions: NormalizedReaction[];
  statuses: NormalizedStatus[];
  revisions: NormalizedRevision[];
  calls: NormalizedCall[];
  shelved: NormalizedShelf[];
  /** Value-level errors (not tied to a message), with Meta's title and details. */
  valueErrors: NormalizedError[];
  counts: {
    /** Changes whose `field` this version does not ingest (account, template, quality updates, …). */
    ignoredChanges: number;
    ignoredByField: Record<string, number>;
    /** Ingested changes that did not parse at all; their issue paths are in `invalidIssues`. */
    invalidChanges: number;
    /** Messages with no `from`, no `from_user_id` and not exactly one contact: shelved. */
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
      // A form's answers are searchable; "Sent" (Meta's fixed body) is not worth finding.
      if (i.nfm_reply) return formAnswersText(i.nfm_reply.response_json) ?? i.nfm_reply.body ?? null;
      return null;
    }
    case 'button':
      return m.button.text;
    case 'system':
      return m.system.body ?? null;
    case 'order':
      return m.order.text ?? null;
    case 'edit':
    case 'revoke':
      return null;
  }
}

/** The text or caption of the new version an `edit` carries. */
function editedTextOf(e: Extract<KnownMessage, { type: 'edit' }>['edit']): string | null {
  const m = e.message;
  if (!m) return null;
  return m.text?.body ?? m.image?.caption ?? m.video?.caption ?? m.document?.caption ?? null;
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

/** The answers of a WhatsApp Flow (`response_json`) as `label: value` lines, without the flow token. */
function formAnswersText(json: string | undefined): string | null {
  const answers = parseFormAnswers(json);
  return answers.length > 0 ? answers.map((a) => `${a.label}: ${a.value}`).join('\n') : null;
}

/**
 * `response_json` of an `nfm_reply`: a JSON object of the form's answers, whose keys are the
 * flow's field names (`flow_token` is Meta's bookkeeping, not an answer). Values are flattened to
 * text; anything that is not a JSON object gives no answers.
 */
export function parseFormAnswers(json: string | undefined): { label: string; value: string }[] {
  if (!json) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return [];
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return [];
  const out: { label: string; value: string }[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === 'flow_token' || value === null || value === undefined || value === '') continue;
    out.push({ label: fieldLabel(key), value: answerText(value) });
  }
  return out;
}

/** `screen_0_Preferred_date_1` → `Preferred date`; `first_name` → `First name`. */
function fieldLabel(key: string): string {
  const words = key
    .replace(/^screen_\d+_/i, '')
    .replace(/_\d+$/, '')
    .split(/[_\s]+/)
    .filter(Boolean);
  const text = words.join(' ');
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : key;
}

function answerText(value: unknown): string {
  if (Array.isArray(value)) return value.map(answerText).join(', ');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  if (typeof value === 'string') return value.replace(/^\d+_/, '');
  return String(value);
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

/**
 * Who a message is from: `from` or `from_user_id`; failing both, the change's only contact when
 * it names exactly one (then it can only be theirs). Null: nobody to file it under.
 */
function attribute(m: { from?: string | undefined; from_user_id?: string | undefined }, contacts: WebhookContact[] | undefined, fallbackUserId: string | null): UserRef | null {
  const ref: UserRef = { waId: m.from ?? null, userId: m.from_user_id ?? fallbackUserId };
  if (ref.waId || ref.userId) return ref;
  if (contacts?.length === 1) {
    const only = contacts[0]!;
    if (only.wa_id || only.user_id) return { waId: only.wa_id ?? null, userId: only.user_id ?? null };
  }
  return null;
}

/** A webhook body holding one change with `value`, as Meta would have sent it alone. */
function bodyOf(entryId: string, field: string, value: unknown): Record<string, unknown> {
  return { object: 'whatsapp_business_account', entry: [{ id: entryId, changes: [{ field, value }] }] };
}

function recordErrors(out: NormalizedWebhook, entryId: string, phoneNumberId: string, scope: string, errors: WebhookError[] | undefined, key: string): void {
  (errors ?? []).forEach((e, i) =>
    out.valueErrors.push({
      phoneNumberId,
      scope,
      code: e.code,
      title: e.title ?? null,
      message: e.message ?? null,
      details: e.error_data?.details ?? null,
      href: e.href ?? null,
      key: `${entryId}\0${phoneNumberId}\0${scope}\0${key}\0${i}\0${JSON.stringify(e)}`,
    }),
  );
}

/** A message (inbound, or the clinic's echo from its phone) → what ingest stores. */
function pushMessage(
  out: NormalizedWebhook,
  m: InboundMessage,
  at: { phoneNumberId: string; sender: NormalizedContact; direction: 'inbound' | 'outbound'; origin: 'phone' | null },
): void {
  const sentAt = toMs(m.timestamp);
  if (!('unrecognised' in m) && (m.type === 'edit' || m.type === 'revoke')) {
    out.revisions.push({
      phoneNumberId: at.phoneNumberId,
      eventWamid: m.id,
      originalWamid: m.type === 'edit' ? m.edit.original_message_id : m.revoke.original_message_id,
      kind: m.type,
      sender: at.sender,
      direction: at.direction,
      text: m.type === 'edit' ? editedTextOf(m.edit) : null,
      content: m.type === 'edit' ? ((m.edit.message as Record<string, unknown> | undefined) ?? null) : null,
      at: sentAt,
    });
    return;
  }
  const base = {
    phoneNumberId: at.phoneNumberId,
    wamid: m.id,
    sender: at.sender,
    direction: at.direction,
    origin: at.origin,
    content: withoutMarker(m),
    contextWamid: m.context?.id ?? null,
    sentAt,
  };
  if ('unrecognised' in m) {
    const known = (KNOWN_MESSAGE_TYPES as readonly string[]).includes(m.type);
    out.messages.push({ ...base, type: 'unsupported', text: null, mediaId: null, media: null, unsupported: known ? 'malformed' : 'unknown_type', identityChange: null });
    return;
  }
  const media = mediaOf(m);
  out.messages.push({
    ...base,
    type: m.type,
    text: textOf(m),
    mediaId: media?.id ?? null,
    media: media ? { mimeType: media.mimeType, sha256: media.sha256, filename: media.filename } : null,
    unsupported: m.type === 'unsupported' ? 'meta_unsupported' : null,
    identityChange: m.type === 'system' && at.direction === 'inbound' ? identityChangeOf(m.system) : null,
  });
}

function normalizeValue(entryId: string, value: MessagesValue, out: NormalizedWebhook): void {
  const phoneNumberId = value.metadata.phone_number_id;
  recordErrors(out, entryId, phoneNumberId, 'value', value.errors, '');

  for (const m of value.messages ?? []) {
    // An identity notice names the user by the BSUID it replaces, even where it lacks a sender.
    const previousUserId = !('unrecognised' in m) && m.type === 'system' ? (m.system.previous_user_id ?? null) : null;
    const ref = attribute(m, value.contacts, previousUserId);
    if (!ref) {
      out.counts.unattributable += 1;
      out.shelved.push({ reason: UNATTRIBUTABLE, payload: bodyOf(entryId, 'messages', { ...value, statuses: undefined, messages: [withoutMarker(m)] }) });
      continue;
    }
    const sender = senderOf(ref, value.contacts);
    if (!('unrecognised' in m) && m.type === 'reaction') {
      out.reactions.push({
        phoneNumberId,
        reactionWamid: m.id,
        sender,
        targetWamid: m.reaction.message_id,
        emoji: m.reaction.emoji ?? '',
        reactedAt: toMs(m.timestamp),
      });
      continue;
    }
    pushMessage(out, m, { phoneNumberId, sender, direction: 'inbound', origin: null });
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

/** `smb_message_echoes`: what the clinic sent from the WhatsApp Business app, filed under the patient it went to. */
function normalizeEchoes(entryId: string, value: MessageEchoesValue, out: NormalizedWebhook): void {
  const phoneNumberId = value.metadata.phone_number_id;
  for (const { echo, message } of value.message_echoes) {
    const ref: UserRef = { waId: echo.to ?? null, userId: echo.to_user_id ?? null };
    if (!ref.waId && !ref.userId) {
      out.counts.unattributable += 1;
      out.shelved.push({ reason: UNATTRIBUTABLE, payload: bodyOf(entryId, 'smb_message_echoes', { ...value, message_echoes: [echo] }) });
      continue;
    }
    const sender = senderOf(ref, value.contacts);
    // The echo's `from` is the clinic's own number: never a sender to file it under.
    const inbound: InboundMessage = message ?? { ...echo, unrecognised: true as const };
    if (inbound.type === 'reaction' && !('unrecognised' in inbound)) {
      out.reactions.push({ phoneNumberId, reactionWamid: inbound.id, sender, targetWamid: inbound.reaction.message_id, emoji: inbound.reaction.emoji ?? '', reactedAt: toMs(inbound.timestamp), fromBusiness: true });
      continue;
    }
    pushMessage(out, inbound, { phoneNumberId, sender, direction: 'outbound', origin: 'phone' });
  }
}

/** `calls`: each call (and each status of a call the clinic placed) as the line its thread shows. */
function normalizeCalls(entryId: string, value: CallsValue, out: NormalizedWebhook): void {
  const phoneNumberId = value.metadata.phone_number_id;
  recordErrors(out, entryId, phoneNumberId, 'value', value.errors, '');
  for (const c of value.calls ?? []) {
    const userInitiated = (c.direction ?? 'USER_INITIATED').toUpperCase() !== 'BUSINESS_INITIATED';
    const ref: UserRef = userInitiated
      ? { waId: c.from ?? null, userId: c.from_user_id ?? null }
      : { waId: c.to ?? null, userId: c.to_user_id ?? null };
    const who = ref.waId || ref.userId ? ref : attribute({}, value.contacts, null);
    if (!who) {
      out.counts.unattributable += 1;
      out.shelved.push({ reason: UNATTRIBUTABLE, payload: bodyOf(entryId, 'calls', { ...value, statuses: undefined, calls: [c] }) });
      continue;
    }
    recordErrors(out, entryId, phoneNumberId, 'call', c.errors, c.id);
    const duration = c.duration === undefined ? null : Number(c.duration);
    out.calls.push({
      phoneNumberId,
      callId: c.id,
      sender: senderOf(who, value.contacts),
      direction: userInitiated ? 'inbound' : 'outbound',
      call: {
        event: c.event ?? 'connect',
        status: c.status ?? null,
        durationSeconds: duration !== null && Number.isFinite(duration) ? duration : null,
        direction: c.direction ?? null,
      },
      at: toMs(c.timestamp),
    });
  }
  for (const s of value.statuses ?? []) {
    const ref: UserRef = { waId: s.recipient_id ?? null, userId: s.recipient_user_id ?? null };
    const who = ref.waId || ref.userId ? ref : attribute({}, value.contacts, null);
    if (!who) {
      out.counts.unattributable += 1;
      out.shelved.push({ reason: UNATTRIBUTABLE, payload: bodyOf(entryId, 'calls', { ...value, calls: undefined, statuses: [s] }) });
      continue;
    }
    out.calls.push({
      phoneNumberId,
      callId: s.id,
      sender: senderOf(who, value.contacts),
      direction: 'outbound',
      call: { event: 'status', status: s.status, durationSeconds: null, direction: 'BUSINESS_INITIATED' },
      at: toMs(s.timestamp),
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
    revisions: [],
    calls: [],
    shelved: [],
    valueErrors: [],
    counts: { ignoredChanges: 0, ignoredByField: Object.create(null) as Record<string, number>, invalidChanges: 0, unattributable: 0 },
    invalidIssues: [],
  };
  for (const change of parseWebhookChanges(webhook)) {
    if (change.kind === 'messages') normalizeValue(change.entryId, change.value, out);
    else if (change.kind === 'echoes') normalizeEchoes(change.entryId, change.value, out);
    else if (change.kind === 'calls') normalizeCalls(change.entryId, change.value, out);
    else if (change.kind === 'ignored') {
      out.counts.ignoredChanges += 1;
      out.counts.ignoredByField[change.field] = (out.counts.ignoredByField[change.field] ?? 0) + 1;
      out.shelved.push({ reason: `${IGNORED_FIELD}${change.field.slice(0, 80)}`, payload: { object: webhook.object, entry: [{ id: change.entryId, changes: [change.change] }] } });
    } else {
      out.counts.invalidChanges += 1;
      out.invalidIssues.push(...change.issues);
    }
  }
  return out;
}
