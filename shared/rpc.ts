import { z } from 'zod';
import { AppErrorSchema } from './errors';
import { isAllowedGraphBaseUrl, isAllowedRelayUrl } from './urls';
import { BacklogSchema } from './wire';

/**
 * The one RPC contract between the renderer and the core. Each method names its input and output
 * schemas, the roles allowed to call it, and the audit action it records when it touches patient
 * data. Every transport (Electron IPC, the web harness, the in-memory test transport) goes through
 * the core's single `dispatch`, which enforces all of it.
 */
export const ROLES = ['receptionist', 'admin', 'auditor'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

export const AUDIT_ACTIONS = ['create', 'read', 'update', 'delete', 'export', 'login', 'logout', 'send', 'configure'] as const;
export const AuditActionSchema = z.enum(AUDIT_ACTIONS);
export type AuditAction = z.infer<typeof AuditActionSchema>;

const Id = z.number().int().positive();
const Cursor = z.string().max(200);
const Limit = z.number().int().min(1).max(200);

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
  reactions: z.array(z.object({ emoji: z.string(), direction: z.enum(['in', 'out']) })),
  status: MessageStatusSchema,
  error: z.object({ code: z.number().int().nullable(), title: z.string() }).nullable(),
  /** When the message was sent (Meta's timestamp for inbound, enqueue time for outbound), ms. */
  at: z.number().int(),
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
});
export type Template = z.infer<typeof TemplateSchema>;

/** Whether an IT-admin recovery key exists for the database key (never the key itself). */
export const RecoveryStatusSchema = z.object({ configured: z.boolean(), createdAt: z.number().int().nullable() });
export type RecoveryStatus = z.infer<typeof RecoveryStatusSchema>;

/**
 * Where the access token is sent: Meta's Graph API over HTTPS, or a simulator on this computer
 * (tests, the demo). Anything else would hand the clinic's token to another host.
 */
export const GraphBaseUrlSchema = z.url().refine(isAllowedGraphBaseUrl, {
  message: 'must be https://graph.facebook.com, or a simulator on this computer (http://127.0.0.1:…)',
});

/**
 * The relay the appliance enrols with: HTTPS, so the relay key pinned at enrolment is the relay's;
 * plain HTTP only for a relay on this computer (tests, the demo).
 */
export const RelayUrlSchema = z.url().refine(isAllowedRelayUrl, { message: 'must start with https:// (plain http only for a relay on this computer)' });

/**
 * `refused`: the relay is reachable but will not accept this appliance; only an IT admin can fix it
 * (pair again, or correct the clock). `offline` is a link problem that heals by itself.
 */
export const RelayStateSchema = z.enum(['not_paired', 'connecting', 'connected', 'offline', 'refused']);
/**
 * Why the relay refuses this appliance:
 * - `revoked`: the operator revoked it, or the clinic was paired with another computer since;
 * - `not_recognised`: the relay does not know this appliance's device key (its records were reset);
 * - `device_keys_changed`: the keychain holds other device keys than the ones paired (the database
 *   was restored on new hardware), so the core does not even try;
 * - `clock_skew`: this computer's clock is too far from the relay's for its login to be accepted.
 * - `another_computer`: another computer keeps connecting as this appliance (a copy of its keys,
 *   e.g. a data folder restored elsewhere with the recovery key); this one stops until an admin acts.
 */
export const RelayRefusedReasonSchema = z.enum(['revoked', 'not_recognised', 'device_keys_changed', 'clock_skew', 'another_computer']);
export type RelayRefusedReason = z.infer<typeof RelayRefusedReasonSchema>;
export const RelayStatusSchema = z.object({
  state: RelayStateSchema,
  /** Since when the link has been down (ms), null while connected. */
  offlineSince: z.number().int().nullable(),
  /** What waits at the relay, as last reported; null when unknown. */
  backlog: BacklogSchema.nullable(),
  relayUrl: z.string().nullable(),
  /** Set while `state` is `refused`; null or absent otherwise. */
  refusedReason: RelayRefusedReasonSchema.nullable().optional(),
});
export type RelayStatus = z.infer<typeof RelayStatusSchema>;

/**
 * Whether this appliance checks Meta's `X-Hub-Signature-256` itself (it holds the app secret), with
 * counts since the secrets were last set. Never the secrets themselves.
 */
export const SignatureCheckStatusSchema = z.object({
  enabled: z.boolean(),
  /** How many app secrets are active (two while Meta rotates one). */
  secrets: z.number().int().min(0),
  /** When the current secrets were set (the counts start there); null when checking is off. */
  since: z.number().int().nullable(),
  /** Deliveries whose Meta signature checked out. */
  verified: z.number().int().min(0),
  /** Deliveries shelved, not shown, because Meta's signature did not check out (a wrong app secret, or a forgery). */
  failed: z.number().int().min(0),
  /** Of those, shelved since `since`: failing now, not yet looked at (entering the secret again re-checks and resets this). */
  failedSince: z.number().int().min(0),
  lastFailedAt: z.number().int().nullable(),
  /** Deliveries the relay re-serialised from a POST for several clinics: only the relay vouches for them. */
  relayVouched: z.number().int().min(0),
  /**
   * Only Meta-signed deliveries reach the inbox: relay-re-serialised ones are shelved and counted in
   * `failed` (for a clinic with its own Meta app, so the relay's key alone cannot add messages).
   * Always false while `enabled` is false.
   */
  required: z.boolean(),
});
export type SignatureCheckStatus = z.infer<typeof SignatureCheckStatusSchema>;

export const WhatsAppStatusSchema = z.object({
  configured: z.boolean(),
  tokenExpired: z.boolean(),
  phoneNumberIds: z.array(z.string()),
  signatureCheck: SignatureCheckStatusSchema,
});
export type WhatsAppStatus = z.infer<typeof WhatsAppStatusSchema>;

/**
 * The Meta app secret (App settings > Basic > App secret: 32 characters 0-9, a-f), or several
 * separated by spaces or commas while Meta rotates it. Zod issues never echo the value.
 */
export const AppSecretsInputSchema = z
  .string()
  .max(200)
  .transform((s) => [...new Set(s.toLowerCase().split(/[\s,]+/).filter((x) => x.length > 0))])
  .pipe(
    z
      .array(z.string().regex(/^[0-9a-f]{32}$/, 'a Meta app secret is 32 characters, 0-9 and a-f'))
      .min(1, 'enter the app secret')
      .max(3, 'at most three app secrets at once'),
  );

export const SearchHitSchema = z.object({
  messageId: Id,
  conversationId: Id,
  contactName: z.string().nullable(),
  /** Snippet of the message with hits wrapped in U+E000 … U+E001 (never HTML). */
  snippet: z.string(),
  at: z.number().int(),
});
export type SearchHit = z.infer<typeof SearchHitSchema>;
export const HIGHLIGHT_START = '\uE000';
export const HIGHLIGHT_END = '\uE001';

export const AuditVerdictSchema = z.object({
  /** The local hash chain: every entry present, in order, unaltered. */
  chain: z.union([
    z.object({ ok: z.literal(true), entries: z.number().int(), headSeq: z.number().int().nullable() }),
    z.object({ ok: z.literal(false), entries: z.number().int(), brokenAt: z.number().int(), reason: z.string() }),
  ]),
  /** The outside witness: the relay's latest signed checkpoint still matches the local log. */
  witness: z.union([
    z.object({ ok: z.literal(true), witnessedSeq: z.number().int().nullable() }),
    z.object({ ok: z.literal(false), reason: z.string() }),
    z.object({ ok: z.literal(null), reason: z.string() }),
  ]),
});
export type AuditVerdict = z.infer<typeof AuditVerdictSchema>;

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

const staff = ['receptionist', 'admin'] as const;

function method<I extends z.ZodType, O extends z.ZodType>(def: {
  input: I;
  output: O;
  roles: readonly Role[];
  /** Recorded in the audit log, with the patient (contact) it concerns, when set. */
  audit?: AuditAction;
}) {
  return def;
}

export const rpcContract = {
  'session.whoami': method({
    input: z.object({}),
    output: z.object({ userId: z.string(), role: RoleSchema, displayName: z.string() }),
    roles: ROLES,
  }),
  'inbox.listConversations': method({
    input: z.object({
      filter: z.enum(['all', 'unread', 'mine', 'resolved']).default('all'),
      cursor: Cursor.optional(),
      limit: Limit.default(50),
    }),
    output: z.object({ items: z.array(ConversationSummarySchema), nextCursor: Cursor.nullable(), unreadTotal: z.number().int() }),
    roles: staff,
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
    roles: staff,
    audit: 'read',
  }),
  'messages.list': method({
    input: z.object({ conversationId: Id, before: Cursor.optional(), limit: Limit.default(50) }),
    output: z.object({ items: z.array(MessageViewSchema), nextCursor: Cursor.nullable() }),
    roles: staff,
    audit: 'read',
  }),
  'messages.send': method({
    input: z.object({
      conversationId: Id,
      text: z.string().trim().min(1).max(4096),
      replyToMessageId: Id.optional(),
    }),
    output: z.object({ messageId: Id }),
    roles: staff,
    audit: 'send',
  }),
  'messages.sendMedia': method({
    input: z.object({
      conversationId: Id,
      /** The file, base64. WhatsApp's own limits per type (image 5 MB, video 16 MB, document 100 MB) apply. */
      dataBase64: z.string().min(4).max(140_000_000).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
      mimeType: z.string().min(3).max(100),
      filename: z.string().trim().min(1).max(240).optional(),
      caption: z.string().trim().max(1024).optional(),
      replyToMessageId: Id.optional(),
    }),
    output: z.object({ messageId: Id }),
    roles: staff,
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
    roles: staff,
    audit: 'send',
  }),
  'conversations.markRead': method({
    input: z.object({ conversationId: Id }),
    output: z.object({}),
    roles: staff,
    audit: 'update',
  }),
  'conversations.setStatus': method({
    input: z.object({ conversationId: Id, status: ConversationStatusSchema }),
    output: z.object({}),
    roles: staff,
    audit: 'update',
  }),
  'conversations.assign': method({
    input: z.object({ conversationId: Id, toMe: z.boolean() }),
    output: z.object({}),
    roles: staff,
    audit: 'update',
  }),
  'search.messages': method({
    input: z.object({ query: z.string().trim().min(1).max(200), cursor: Cursor.optional(), limit: Limit.default(30) }),
    output: z.object({ items: z.array(SearchHitSchema), nextCursor: Cursor.nullable() }),
    roles: staff,
    audit: 'read',
  }),
  'contacts.get': method({
    input: z.object({ contactId: Id }),
    output: ContactSchema,
    roles: staff,
    audit: 'read',
  }),
  'contacts.update': method({
    input: z.object({
      contactId: Id,
      displayName: z.string().trim().max(120).nullable().optional(),
      notes: z.string().max(4000).optional(),
    }),
    output: ContactSchema,
    roles: staff,
    audit: 'update',
  }),
  'media.get': method({
    input: z.object({ mediaId: Id }),
    output: z.object({ mimeType: z.string(), filename: z.string().nullable(), dataBase64: z.string() }),
    roles: staff,
    audit: 'read',
  }),
  'templates.list': method({
    input: z.object({}),
    output: z.array(TemplateSchema),
    roles: staff,
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
    roles: staff,
  }),
  /** Saving a text already saved returns that one (`created: false`); a full list is `CONFLICT`. */
  'quickReplies.add': method({
    input: z.object({ text: z.string().trim().min(1).max(QUICK_REPLY_MAX_LENGTH) }),
    output: z.object({ reply: QuickReplySchema, created: z.boolean() }),
    roles: staff,
    audit: 'create',
  }),
  /** `removed: false` when it was already gone (removed in another window). */
  'quickReplies.remove': method({
    input: z.object({ id: Id }),
    output: z.object({ removed: z.boolean() }),
    roles: staff,
    audit: 'delete',
  }),
  'relay.status': method({
    input: z.object({}),
    output: RelayStatusSchema,
    roles: ROLES,
  }),
  'whatsapp.status': method({
    input: z.object({}),
    output: WhatsAppStatusSchema,
    roles: ROLES,
  }),
  'audit.verify': method({
    input: z.object({
      /** Also sign the current head, have the relay witness it, and compare with what it holds. */
      withRelayWitness: z.boolean().default(true),
    }),
    output: AuditVerdictSchema,
    roles: ['auditor', 'admin'],
    audit: 'read',
  }),
  'recovery.status': method({
    input: z.object({}),
    output: RecoveryStatusSchema,
    roles: ['admin'],
  }),
  /** Shown once: the core keeps only the database key wrapped under it. */
  'recovery.create': method({
    input: z.object({
      /** An existing recovery key stops working when a new one is made; say so explicitly. */
      replace: z.boolean().default(false),
    }),
    output: z.object({ recoveryKey: z.string().regex(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/), createdAt: z.number().int() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  /**
   * New hardware: the keychain lost the database key. The only method a core in that state answers;
   * it proves the unwrapped key opens the database before writing it to the keychain.
   */
  'recovery.restore': method({
    input: z.object({ recoveryKey: z.string().trim().min(1).max(100) }),
    output: z.object({ installationId: z.string(), restored: z.boolean() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  'setup.pair': method({
    input: z.object({ relayUrl: RelayUrlSchema, code: z.string().min(1).max(40) }),
    output: z.object({ tenantId: z.string(), applianceId: z.string(), phoneNumberIds: z.array(z.string()) }),
    roles: ['admin'],
    audit: 'configure',
  }),
  'setup.whatsapp': method({
    input: z.object({
      wabaId: z.string().regex(/^\d{1,32}$/),
      accessToken: z.string().min(20).max(1000),
      graphBaseUrl: GraphBaseUrlSchema.optional(),
      /** Absent: keep the app secret(s) already set; null: stop checking Meta's signature here. */
      appSecret: AppSecretsInputSchema.nullable().optional(),
      /** Absent: keep the setting. True needs an app secret, stored or given here (VALIDATION_FAILED otherwise). */
      requireMetaSignature: z.boolean().optional(),
    }),
    output: WhatsAppStatusSchema,
    roles: ['admin'],
    audit: 'configure',
  }),
} as const;

export type RpcContract = typeof rpcContract;
export type RpcMethod = keyof RpcContract;
export type RpcInput<M extends RpcMethod> = z.input<RpcContract[M]['input']>;
export type RpcOutput<M extends RpcMethod> = z.output<RpcContract[M]['output']>;

export const RPC_METHODS = Object.keys(rpcContract) as RpcMethod[];
export function isRpcMethod(name: string): name is RpcMethod {
  return Object.hasOwn(rpcContract, name);
}

export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: z.infer<typeof AppErrorSchema> };
export const RpcResultSchema = z.union([
  z.object({ ok: z.literal(true), value: z.unknown() }),
  z.object({ ok: z.literal(false), error: AppErrorSchema }),
]);

/** Push events from the core to every window. */
export const rpcEvents = {
  'message.received': z.object({ conversationId: Id, messageId: Id }),
  'message.statusChanged': z.object({ conversationId: Id, messageId: Id, status: MessageStatusSchema }),
  /** Something about messages already shown changed (a file finished downloading, a reaction); `messageId` null: several. */
  'message.updated': z.object({ conversationId: Id, messageId: Id.nullable() }),
  'conversation.updated': z.object({ conversationId: Id }),
  'relay.stateChanged': RelayStatusSchema,
  'whatsapp.stateChanged': WhatsAppStatusSchema,
  /** A quick reply was saved or removed; windows fetch the list again. */
  'quickReplies.changed': z.object({}),
} as const;
export type RpcEvents = typeof rpcEvents;
export type RpcEventName = keyof RpcEvents;
export type RpcEventPayload<E extends RpcEventName> = z.output<RpcEvents[E]>;
export function isRpcEventName(name: string): name is RpcEventName {
  return Object.hasOwn(rpcEvents, name);
}
