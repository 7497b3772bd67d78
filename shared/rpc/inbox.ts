import { z } from 'zod';
import { Cursor, Id, Limit, STAFF, method } from './common';

/** The inbox: conversations, messages, contacts, search, media, templates and quick replies. */

export const ConversationStatusSchema = z.enum(['open', 'pending', 'resolved']);
export type ConversationStatus = z.infer<typeof ConversationStatusSchema>;

export const MessageStatusSchema = z.enum(['pending', 'sent', 'delivered', 'read', 'played', 'failed', 'received']);
export type MessageStatus = z.infer<typeof MessageStatusSchema>;

export const WindowStateSchema = z.object({
  open: z.boolean(),
  /** When the 24-hour customer-service window closes (ms), or null if it is closed. */
  closesAt: z.number().int().nullable(),
});
export type WindowState = z.infer<typeof WindowStateSchema>;

export const ContactSchema = z.object({
  id: Id,
  /** Phone-number WhatsApp id, absent for users known only by their business-scoped user id. */
  waId: z.string().nullable(),
  businessScopedUserId: z.string().nullable(),
  profileName: z.string().nullable(),
  displayName: z.string().nullable(),
  notes: z.string(),
});
export type Contact = z.infer<typeof ContactSchema>;

export const ConversationSummarySchema = z.object({
  id: Id,
  contact: ContactSchema.pick({ id: true, displayName: true, profileName: true, waId: true }),
  phoneNumberId: z.string(),
  status: ConversationStatusSchema,
  assignedTo: z.string().nullable(),
  unreadCount: z.number().int().nonnegative(),
  lastMessageAt: z.number().int().nullable(),
  lastMessagePreview: z.string().nullable(),
  lastMessageDirection: z.enum(['in', 'out']).nullable(),
});
export type ConversationSummary = z.infer<typeof ConversationSummarySchema>;

export const MediaRefSchema = z.object({
  id: Id,
  mimeType: z.string().nullable(),
  filename: z.string().nullable(),
  size: z.number().int().nullable(),
  state: z.enum(['pending', 'downloading', 'stored', 'failed', 'too_large']),
});

// message shapes
/**
 * What a message holds beyond its text, shaped for its own presentation (a pin with coordinates, a
 * form's labelled answers, an order's lines, a call line, …). Built by the core from the stored
 * message as Meta sent it; absent for plain text and images.
 */
export const MessageDetailSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('location'),
    latitude: z.number(),
    longitude: z.number(),
    name: z.string().nullable(),
    address: z.string().nullable(),
    /** A map at these coordinates, on a host the desk's external-link allowlist opens. */
    mapsUrl: z.string(),
  }),
  z.object({
    kind: z.literal('contacts'),
    cards: z.array(z.object({ name: z.string().nullable(), phones: z.array(z.string()), emails: z.array(z.string()), organisation: z.string().nullable() })),
  }),
  /** A tapped reply button (`button`), list row (`list`) or template quick-reply (`template`). */
  z.object({ kind: z.literal('reply'), replyKind: z.enum(['button', 'list', 'template']), title: z.string(), description: z.string().nullable() }),
  /** A completed WhatsApp Flow: the form's answers, labelled. */
  z.object({ kind: z.literal('form'), answers: z.array(z.object({ label: z.string(), value: z.string() })) }),
  z.object({ kind: z.literal('callPermission'), accepted: z.boolean(), permanent: z.boolean().nullable() }),
  z.object({
    kind: z.literal('order'),
    catalogId: z.string().nullable(),
    items: z.array(z.object({ retailerId: z.string().nullable(), quantity: z.number().nullable(), price: z.number().nullable(), currency: z.string().nullable() })),
  }),
  z.object({
    kind: z.literal('call'),
    direction: z.enum(['in', 'out']),
    /** `ringing` (started), `answered` (ended after talking), `missed`, `rejected`, `failed`. */
    outcome: z.enum(['ringing', 'answered', 'missed', 'rejected', 'failed', 'accepted']),
    durationSeconds: z.number().nullable(),
  }),
  z.object({ kind: z.literal('sticker'), animated: z.boolean() }),
  z.object({ kind: z.literal('audio'), voice: z.boolean() }),
  z.object({ kind: z.literal('video') }),
  z.object({ kind: z.literal('document'), filename: z.string().nullable() }),
  /** What this version cannot show yet, with Meta's type name (`poll`, `hologram`, …). */
  z.object({ kind: z.literal('unsupported'), metaType: z.string() }),
]);
export type MessageDetail = z.infer<typeof MessageDetailSchema>;

/** A Click-to-WhatsApp ad or post the patient came from. */
export const ReferralViewSchema = z.object({
  sourceType: z.string().nullable(),
  headline: z.string().nullable(),
  body: z.string().nullable(),
  sourceUrl: z.string().nullable(),
});
export type ReferralView = z.infer<typeof ReferralViewSchema>;

export const MessageViewSchema = z.object({
  id: Id,
  wamid: z.string().nullable(),
  conversationId: Id,
  direction: z.enum(['in', 'out']),
  /** Meta's message type (`text`, `image`, …); `unsupported` for what we cannot show yet. */
  type: z.string(),
  /** Text, caption, or a short description for non-text types (location name, button title, …). */
  text: z.string().nullable(),
  media: MediaRefSchema.nullable(),
  replyTo: z.object({ messageId: Id.nullable(), wamid: z.string(), preview: z.string().nullable() }).nullable(),
  reactions: z.array(
    z.object({
      /** Empty only for the clinic's own removal while it is sent (or after it failed). */
      emoji: z.string(),
      direction: z.enum(['in', 'out']),
      /** The clinic's reaction sent from this desk: pending until WhatsApp accepts it, or failed with `error`. */
      status: z.enum(['pending', 'sent', 'failed']).optional(),
      error: z.string().nullable().optional(),
    }),
  ),
  status: MessageStatusSchema,
  error: z.object({ code: z.number().int().nullable(), title: z.string() }).nullable(),
  /** When the message was sent (Meta's timestamp for inbound, enqueue time for outbound), ms. */
  at: z.number().int(),
  // message shapes (additive)
  detail: MessageDetailSchema.nullable().optional(),
  referral: ReferralViewSchema.nullable().optional(),
  /** The sender edited it; `text` is the latest version. */
  edited: z.boolean().optional(),
  /** The sender deleted it for everyone: text and media are gone. */
  deleted: z.boolean().optional(),
  /** The clinic sent it from the WhatsApp Business app on its phone. */
  fromPhone: z.boolean().optional(),
});
export type MessageView = z.infer<typeof MessageViewSchema>;

export const TemplateSchema = z.object({
  name: z.string(),
  language: z.string(),
  category: z.string(),
  status: z.string(),
  /** The body text with {{1}}-style placeholders, for the picker's preview. */
  bodyText: z.string(),
  parameterCount: z.number().int().nonnegative(),
  /** Meta's example value for each variable, in order, where the template has them. */
  examples: z.array(z.string()).default([]),
});
export type Template = z.infer<typeof TemplateSchema>;

export const SearchHitSchema = z.object({
  messageId: Id,
  conversationId: Id,
  contactName: z.string().nullable(),
  /** Snippet of the message with hits wrapped in U+E000 … U+E001 (never HTML). */
  snippet: z.string(),
  at: z.number().int(),
});
export type SearchHit = z.infer<typeof SearchHitSchema>;
/** A contact whose name, number or notes match a search (listed above message hits). */
export const ContactHitSchema = z.object({
  contactId: Id,
  /** The contact's most recent conversation, null when there is none yet. */
  conversationId: Id.nullable(),
  displayName: z.string().nullable(),
  profileName: z.string().nullable(),
  waId: z.string().nullable(),
  /** What matched: shown so the receptionist sees why this person is listed. */
  matched: z.enum(['name', 'number', 'notes']),
  /** For a notes match: the words around it, hits wrapped in U+E000 … U+E001. */
  snippet: z.string().nullable(),
});
export type ContactHit = z.infer<typeof ContactHitSchema>;

export const HIGHLIGHT_START = '\uE000';
export const HIGHLIGHT_END = '\uE001';

/**
 * A saved quick reply: the desk's own phrasing, but often a reply to one patient, so it lives in the
 * encrypted database like any message. The length limit is WhatsApp's (and the composer's) for a
 * text, so whatever a receptionist can send can be saved.
 */
export const QUICK_REPLY_MAX_LENGTH = 4096;
/** How many quick replies the clinic's desk may keep. */
export const QUICK_REPLIES_MAX = 200;
export const QuickReplySchema = z.object({
  id: Id,
  text: z.string(),
  /** Who saved it (user id). */
  createdBy: z.string(),
  createdAt: z.number().int(),
});
export type QuickReply = z.infer<typeof QuickReplySchema>;


export const inboxMethods = {
  'inbox.listConversations': method({
    input: z.object({
      filter: z.enum(['all', 'unread', 'mine', 'resolved']).default('all'),
      cursor: Cursor.optional(),
      limit: Limit.default(50),
    }),
    output: z.object({ items: z.array(ConversationSummarySchema), nextCursor: Cursor.nullable(), unreadTotal: z.number().int() }),
    roles: STAFF,
    /** A page shows patients' names, numbers and last messages: every patient on it is recorded. */
    audit: 'read',
  }),
  'conversations.get': method({
    input: z.object({ conversationId: Id }),
    output: z.object({
      conversation: ConversationSummarySchema,
      contact: ContactSchema,
      window: WindowStateSchema,
    }),
    roles: STAFF,
    breakGlass: true,
    audit: 'read',
  }),
  'messages.list': method({
    input: z.object({ conversationId: Id, before: Cursor.optional(), limit: Limit.default(50) }),
    output: z.object({ items: z.array(MessageViewSchema), nextCursor: Cursor.nullable() }),
    roles: STAFF,
    breakGlass: true,
    audit: 'read',
  }),
  'messages.send': method({
    input: z.object({
      conversationId: Id,
      text: z.string().trim().min(1).max(4096),
      replyToMessageId: Id.optional(),
    }),
    output: z.object({ messageId: Id }),
    roles: STAFF,
    audit: 'send',
  }),
  'messages.sendMedia': method({
    input: z.object({
      conversationId: Id,
      /**
       * The file, base64. WhatsApp's own limits per type (image 5 MB, video 16 MB, document 100 MB)
       * apply. The core checks it is base64 while decoding it (a regex over 7 MB of text took longer
       * than the upload).
       */
      dataBase64: z.string().min(4).max(140_000_000),
      mimeType: z.string().min(3).max(100),
      filename: z.string().trim().min(1).max(240).optional(),
      caption: z.string().trim().max(1024).optional(),
      replyToMessageId: Id.optional(),
    }),
    output: z.object({ messageId: Id }),
    roles: STAFF,
    audit: 'send',
  }),
  'messages.sendTemplate': method({
    input: z.object({
      conversationId: Id,
      name: z.string().min(1),
      language: z.string().min(2),
      parameters: z.array(z.string().max(1024)).max(20).default([]),
    }),
    output: z.object({ messageId: Id }),
    roles: STAFF,
    audit: 'send',
  }),
  /**
   * The clinic's reaction to a patient's message; an empty `emoji` removes it, another replaces it
   * (one per message). Meta's rules apply: only the patient's own messages, not deleted, at most
   * 30 days old, while the 24-hour window is open. `queued: false` when nothing changed.
   */
  'messages.react': method({
    input: z.object({ conversationId: Id, messageId: Id, emoji: z.string().max(16) }),
    output: z.object({ queued: z.boolean() }),
    roles: STAFF,
    audit: 'send',
  }),
  'conversations.markRead': method({
    input: z.object({ conversationId: Id }),
    output: z.object({}),
    roles: STAFF,
    audit: 'update',
  }),
  /** Back to unread (at least one), so a conversation the desk has to come back to stands out again. */
  'conversations.markUnread': method({
    input: z.object({ conversationId: Id }),
    output: z.object({}),
    roles: STAFF,
    audit: 'update',
  }),
  'conversations.setStatus': method({
    input: z.object({ conversationId: Id, status: ConversationStatusSchema }),
    output: z.object({}),
    roles: STAFF,
    audit: 'update',
  }),
  'conversations.assign': method({
    input: z.object({ conversationId: Id, toMe: z.boolean() }),
    output: z.object({}),
    roles: STAFF,
    audit: 'update',
  }),
  'search.messages': method({
    input: z.object({ query: z.string().trim().min(1).max(200), cursor: Cursor.optional(), limit: Limit.default(30) }),
    output: z.object({ items: z.array(SearchHitSchema), nextCursor: Cursor.nullable() }),
    roles: STAFF,
    audit: 'read',
  }),
  /**
   * Contacts by name (saved or WhatsApp profile), phone number in any format (digits are compared,
   * a leading 0, 00 or + ignored) or notes; most recent conversation first.
   */
  'search.contacts': method({
    input: z.object({ query: z.string().trim().min(1).max(200), limit: Limit.default(10) }),
    output: z.object({ items: z.array(ContactHitSchema) }),
    roles: STAFF,
    audit: 'read',
  }),
  'contacts.get': method({
    input: z.object({ contactId: Id }),
    output: ContactSchema,
    roles: STAFF,
    breakGlass: true,
    audit: 'read',
  }),
  'contacts.update': method({
    input: z.object({
      contactId: Id,
      displayName: z.string().trim().max(120).nullable().optional(),
      notes: z.string().max(4000).optional(),
    }),
    output: ContactSchema,
    roles: STAFF,
    audit: 'update',
  }),
  'media.get': method({
    input: z.object({ mediaId: Id }),
    output: z.object({ mimeType: z.string(), filename: z.string().nullable(), dataBase64: z.string() }),
    roles: STAFF,
    breakGlass: true,
    audit: 'read',
  }),
  'templates.list': method({
    input: z.object({}),
    output: z.array(TemplateSchema),
    roles: STAFF,
  }),
  'templates.sync': method({
    input: z.object({}),
    output: z.object({ count: z.number().int() }),
    roles: ['admin'],
  }),
  /** Oldest first, as the composer shows them. */
  'quickReplies.list': method({
    input: z.object({}),
    output: z.array(QuickReplySchema).max(QUICK_REPLIES_MAX),
    roles: STAFF,
  }),
  /** Saving a text already saved returns that one (`created: false`); a full list is `CONFLICT`. */
  'quickReplies.add': method({
    input: z.object({ text: z.string().trim().min(1).max(QUICK_REPLY_MAX_LENGTH) }),
    output: z.object({ reply: QuickReplySchema, created: z.boolean() }),
    roles: STAFF,
    audit: 'create',
  }),
  /** `removed: false` when it was already gone (removed in another window). */
  'quickReplies.remove': method({
    input: z.object({ id: Id }),
    output: z.object({ removed: z.boolean() }),
    roles: STAFF,
    audit: 'delete',
  }),
} as const;
