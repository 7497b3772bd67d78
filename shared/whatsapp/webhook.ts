import { z } from 'zod';

/**
 * WhatsApp Cloud API webhook bodies (`object: whatsapp_business_account`), after Meta's webhook
 * reference. Every object is loose: a field Meta adds tomorrow passes through untouched and is kept
 * in the stored JSON, so a new field never costs a message. A message whose `type` we do not know
 * (or whose known type arrives malformed) still parses through `UnrecognisedMessageSchema` and is
 * kept and shown as unsupported; it is never dropped.
 *
 * Senders: since 2026 Meta identifies users by a business-scoped user id (BSUID, `user_id` /
 * `from_user_id`, e.g. `DE.1502576394655843`) and may omit the phone number (`wa_id` / `from`) for
 * users with a username. Both forms are accepted; at least one must be present where a sender is
 * needed, which ingest checks.
 */

/** Meta sends Unix seconds as a decimal string; accept a number too. */
export const MetaTimestampSchema = z.union([
  z.string().regex(/^\d{1,12}$/, 'expected Unix seconds'),
  z.number().int().nonnegative(),
]);

export const WebhookErrorSchema = z.looseObject({
  code: z.number().int(),
  title: z.string().optional(),
  message: z.string().optional(),
  error_data: z.looseObject({ details: z.string().optional() }).optional(),
  href: z.string().optional(),
});
export type WebhookError = z.infer<typeof WebhookErrorSchema>;

export const WebhookMetadataSchema = z.looseObject({
  display_phone_number: z.string().optional(),
  phone_number_id: z.string().min(1),
});

export const WebhookContactSchema = z.looseObject({
  wa_id: z.string().min(1).optional(),
  user_id: z.string().min(1).optional(),
  parent_user_id: z.string().min(1).optional(),
  identity_key_hash: z.string().optional(),
  profile: z.looseObject({ name: z.string().optional(), username: z.string().optional() }).optional(),
});
export type WebhookContact = z.infer<typeof WebhookContactSchema>;

export const MessageContextSchema = z.looseObject({
  from: z.string().optional(),
  from_user_id: z.string().optional(),
  id: z.string().optional(),
  forwarded: z.boolean().optional(),
  frequently_forwarded: z.boolean().optional(),
  referred_product: z.looseObject({ catalog_id: z.string(), product_retailer_id: z.string() }).optional(),
});

export const ReferralSchema = z.looseObject({
  source_url: z.string().optional(),
  source_id: z.string().optional(),
  source_type: z.string().optional(),
  headline: z.string().optional(),
  body: z.string().optional(),
  media_type: z.string().optional(),
  image_url: z.string().optional(),
  video_url: z.string().optional(),
  thumbnail_url: z.string().optional(),
  ctwa_clid: z.string().optional(),
  welcome_message: z.looseObject({ text: z.string().optional() }).optional(),
});

/** Fields every inbound message has, whatever its type. */
const messageBase = {
  id: z.string().min(1),
  timestamp: MetaTimestampSchema,
  from: z.string().min(1).optional(),
  from_user_id: z.string().min(1).optional(),
  from_parent_user_id: z.string().min(1).optional(),
  context: MessageContextSchema.optional(),
  referral: ReferralSchema.optional(),
  errors: z.array(WebhookErrorSchema).optional(),
};

export const MediaObjectSchema = z.looseObject({
  id: z.string().min(1),
  mime_type: z.string().optional(),
  sha256: z.string().optional(),
  caption: z.string().optional(),
  /** Newer payloads carry a short-lived download URL; the media id is what we rely on. */
  url: z.string().optional(),
});

export const TextMessageSchema = z.looseObject({ ...messageBase, type: z.literal('text'), text: z.looseObject({ body: z.string() }) });
export const ImageMessageSchema = z.looseObject({ ...messageBase, type: z.literal('image'), image: MediaObjectSchema });
export const VideoMessageSchema = z.looseObject({ ...messageBase, type: z.literal('video'), video: MediaObjectSchema });
export const AudioMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('audio'),
  /** `voice: true` for a voice note recorded in WhatsApp, false/absent for an audio file. */
  audio: MediaObjectSchema.extend({ voice: z.boolean().optional() }),
});
export const DocumentMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('document'),
  document: MediaObjectSchema.extend({ filename: z.string().optional() }),
});
export const StickerMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('sticker'),
  sticker: MediaObjectSchema.extend({ animated: z.boolean().optional() }),
});
export const LocationMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('location'),
  location: z.looseObject({
    latitude: z.number(),
    longitude: z.number(),
    name: z.string().optional(),
    address: z.string().optional(),
    url: z.string().optional(),
  }),
});

export const SharedContactSchema = z.looseObject({
  name: z.looseObject({ formatted_name: z.string().optional(), first_name: z.string().optional(), last_name: z.string().optional() }).optional(),
  phones: z.array(z.looseObject({ phone: z.string().optional(), wa_id: z.string().optional(), type: z.string().optional() })).optional(),
  emails: z.array(z.looseObject({ email: z.string().optional(), type: z.string().optional() })).optional(),
  addresses: z.array(z.looseObject({})).optional(),
  org: z.looseObject({}).optional(),
  urls: z.array(z.looseObject({})).optional(),
  birthday: z.string().optional(),
});
export const ContactsMessageSchema = z.looseObject({ ...messageBase, type: z.literal('contacts'), contacts: z.array(SharedContactSchema) });

export const InteractiveMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('interactive'),
  interactive: z.looseObject({
    type: z.string(),
    button_reply: z.looseObject({ id: z.string(), title: z.string() }).optional(),
    list_reply: z.looseObject({ id: z.string(), title: z.string(), description: z.string().optional() }).optional(),
    /** WhatsApp Flows reply: `response_json` is a JSON string of the form's answers. */
    nfm_reply: z.looseObject({ response_json: z.string().optional(), body: z.string().optional(), name: z.string().optional() }).optional(),
    /** The user's answer to a call permission request: `accept` or `reject`. */
    call_permission_reply: z
      .looseObject({
        response: z.string().optional(),
        is_permanent: z.boolean().optional(),
        expiration_timestamp: z.union([z.number(), z.string()]).optional(),
        response_source: z.string().optional(),
      })
      .optional(),
  }),
});

/** A quick-reply button of a template message the clinic sent. */
export const ButtonMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('button'),
  button: z.looseObject({ payload: z.string().optional(), text: z.string() }),
});

/** Added or changed reaction; an absent or empty `emoji` removes the sender's reaction. */
export const ReactionMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('reaction'),
  reaction: z.looseObject({ message_id: z.string().min(1), emoji: z.string().optional() }),
});

/**
 * Meta's notices about the sender. Identity changes arrive here (Meta changelog, Aug 2026; there is
 * no subscribable `user_id_update` field): `user_changed_number` carries the new number in `wa_id`,
 * `user_changed_user_id` a new BSUID when no number can be shared; both carry the new `user_id` /
 * `parent_user_id` beside `previous_user_id` / `previous_parent_user_id`, because a number change
 * regenerates the BSUID. `customer_identity_changed` is a security-code change, not a new id.
 */
export const SystemMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('system'),
  system: z.looseObject({
    body: z.string().optional(),
    /** `user_changed_number`, `customer_changed_number`, `customer_identity_changed`, `user_changed_user_id`, … */
    type: z.string().optional(),
    wa_id: z.string().optional(),
    new_wa_id: z.union([z.string(), z.number()]).optional(),
    user_id: z.string().optional(),
    parent_user_id: z.string().optional(),
    previous_user_id: z.string().optional(),
    previous_parent_user_id: z.string().optional(),
    identity: z.string().optional(),
    customer: z.string().optional(),
  }),
});

/** One line of an order (Meta: `product_retailer_id`, `quantity`, `item_price`, `currency`). */
export const OrderItemSchema = z.looseObject({
  product_retailer_id: z.string().optional(),
  quantity: z.union([z.number(), z.string()]).optional(),
  item_price: z.union([z.number(), z.string()]).optional(),
  currency: z.string().optional(),
});
export const OrderMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('order'),
  order: z.looseObject({
    catalog_id: z.string().optional(),
    text: z.string().optional(),
    product_items: z.array(OrderItemSchema).optional(),
  }),
});

/**
 * The message an `edit` carries: the new version, in the shape of the type it edits (text, or
 * media with a caption). Kept loose: only the text or caption is read from it.
 */
export const EditedContentSchema = z.looseObject({
  type: z.string().optional(),
  text: z.looseObject({ body: z.string().optional() }).optional(),
  image: z.looseObject({ caption: z.string().optional() }).optional(),
  video: z.looseObject({ caption: z.string().optional() }).optional(),
  document: z.looseObject({ caption: z.string().optional() }).optional(),
  context: MessageContextSchema.optional(),
});

/** A user edited an earlier message (Meta's `edit` reference; coexistence numbers). */
export const EditMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('edit'),
  edit: z.looseObject({ original_message_id: z.string().min(1), message: EditedContentSchema.optional() }),
});

/** A user deleted an earlier message for everyone (Meta's `revoke` reference). */
export const RevokeMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('revoke'),
  revoke: z.looseObject({ original_message_id: z.string().min(1) }),
});

/** Meta's own "unsupported" type: a message the Cloud API cannot pass on (`errors[0].code` 131051). */
export const UnsupportedMessageSchema = z.looseObject({
  ...messageBase,
  type: z.literal('unsupported'),
  unsupported: z.looseObject({ type: z.string().optional() }).optional(),
});

export const KnownMessageSchema = z.discriminatedUnion('type', [
  TextMessageSchema,
  ImageMessageSchema,
  VideoMessageSchema,
  AudioMessageSchema,
  DocumentMessageSchema,
  StickerMessageSchema,
  LocationMessageSchema,
  ContactsMessageSchema,
  InteractiveMessageSchema,
  ButtonMessageSchema,
  ReactionMessageSchema,
  SystemMessageSchema,
  OrderMessageSchema,
  UnsupportedMessageSchema,
  EditMessageSchema,
  RevokeMessageSchema,
]);
export type KnownMessage = z.infer<typeof KnownMessageSchema>;
export const KNOWN_MESSAGE_TYPES = KnownMessageSchema.options.map((o) => o.shape.type.value);

/**
 * The catch-all: any message with an id and a timestamp. `unrecognised: true` (added here, never
 * sent by Meta) tells ingest it did not match a known shape, so it is stored as unsupported with
 * its raw JSON rather than guessed at.
 */
export const UnrecognisedMessageSchema = z
  .looseObject({ ...messageBase, type: z.string() })
  .transform((m) => ({ ...m, unrecognised: true as const }));
export type UnrecognisedMessage = z.infer<typeof UnrecognisedMessageSchema>;

export const InboundMessageSchema = z.union([KnownMessageSchema, UnrecognisedMessageSchema]);
export type InboundMessage = z.infer<typeof InboundMessageSchema>;

/** Statuses Meta reports for messages the business sent. Unknown values pass and are recorded. */
export const KNOWN_STATUSES = ['sent', 'delivered', 'read', 'played', 'failed', 'deleted', 'warning'] as const;

export const StatusSchema = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  timestamp: MetaTimestampSchema,
  recipient_id: z.string().optional(),
  recipient_user_id: z.string().optional(),
  recipient_parent_user_id: z.string().optional(),
  recipient_type: z.string().optional(),
  biz_opaque_callback_data: z.string().optional(),
  conversation: z
    .looseObject({
      id: z.string().optional(),
      expiration_timestamp: MetaTimestampSchema.optional(),
      origin: z.looseObject({ type: z.string().optional() }).optional(),
    })
    .optional(),
  pricing: z
    .looseObject({
      billable: z.boolean().optional(),
      pricing_model: z.string().optional(),
      category: z.string().optional(),
      type: z.string().optional(),
    })
    .optional(),
  errors: z.array(WebhookErrorSchema).optional(),
});
export type Status = z.infer<typeof StatusSchema>;

/** `value` of a change with `field: "messages"`. */
export const MessagesValueSchema = z.looseObject({
  messaging_product: z.string().optional(),
  metadata: WebhookMetadataSchema,
  contacts: z.array(WebhookContactSchema).optional(),
  messages: z.array(InboundMessageSchema).optional(),
  statuses: z.array(StatusSchema).optional(),
  /** Errors not tied to one message (e.g. a webhook Meta could not build). */
  errors: z.array(WebhookErrorSchema).optional(),
});
export type MessagesValue = z.infer<typeof MessagesValueSchema>;

/**
 * One message the clinic sent from the WhatsApp Business app on its phone (`smb_message_echoes`,
 * coexistence): a message object as inbound ones are, but `from` is the business number and `to`
 * (or `to_user_id`) the patient.
 */
export const MessageEchoSchema = z
  .looseObject({
    id: z.string().min(1),
    timestamp: MetaTimestampSchema,
    type: z.string(),
    from: z.string().optional(),
    to: z.string().min(1).optional(),
    to_user_id: z.string().min(1).optional(),
    to_parent_user_id: z.string().min(1).optional(),
  })
  .transform((e) => {
    const known = KnownMessageSchema.safeParse(e);
    return { echo: e, message: known.success ? known.data : null };
  });

/** `value` of a change with `field: "smb_message_echoes"`. */
export const MessageEchoesValueSchema = z.looseObject({
  messaging_product: z.string().optional(),
  metadata: WebhookMetadataSchema,
  contacts: z.array(WebhookContactSchema).optional(),
  message_echoes: z.array(MessageEchoSchema),
});
export type MessageEchoesValue = z.infer<typeof MessageEchoesValueSchema>;

/**
 * A call event (`field: "calls"`): `connect` when a call starts ringing, `terminate` when it ends
 * (with `status` COMPLETED or FAILED, and `duration` in seconds when it was answered).
 */
export const CallSchema = z.looseObject({
  id: z.string().min(1),
  from: z.string().optional(),
  to: z.string().optional(),
  from_user_id: z.string().optional(),
  to_user_id: z.string().optional(),
  event: z.string().optional(),
  timestamp: MetaTimestampSchema,
  direction: z.string().optional(),
  status: z.string().optional(),
  start_time: z.union([z.number(), z.string()]).optional(),
  end_time: z.union([z.number(), z.string()]).optional(),
  duration: z.union([z.number(), z.string()]).optional(),
  errors: z.array(WebhookErrorSchema).optional(),
});
export type Call = z.infer<typeof CallSchema>;

/** Call status updates of business-initiated calls (`type: "call"`: RINGING, ACCEPTED, REJECTED). */
export const CallStatusSchema = z.looseObject({
  id: z.string().min(1),
  type: z.string().optional(),
  status: z.string().min(1),
  timestamp: MetaTimestampSchema,
  recipient_id: z.string().optional(),
  recipient_user_id: z.string().optional(),
});

/** `value` of a change with `field: "calls"`. */
export const CallsValueSchema = z.looseObject({
  messaging_product: z.string().optional(),
  metadata: WebhookMetadataSchema,
  contacts: z.array(WebhookContactSchema).optional(),
  calls: z.array(CallSchema).optional(),
  statuses: z.array(CallStatusSchema).optional(),
  errors: z.array(WebhookErrorSchema).optional(),
});
export type CallsValue = z.infer<typeof CallsValueSchema>;

/**
 * The outer body: tolerant on purpose. Each change's `value` is parsed on its own (see
 * `parseWebhookChanges`) so one malformed change never takes a batch's good changes down with it.
 */
export const WebhookChangeSchema = z.looseObject({ field: z.string(), value: z.unknown() });
export const WebhookEntrySchema = z.looseObject({ id: z.string(), changes: z.array(WebhookChangeSchema) });
export const WebhookSchema = z.looseObject({ object: z.string(), entry: z.array(WebhookEntrySchema) });
export type Webhook = z.infer<typeof WebhookSchema>;

export type ParsedChange =
  | { kind: 'messages'; entryId: string; value: MessagesValue }
  | { kind: 'echoes'; entryId: string; value: MessageEchoesValue }
  | { kind: 'calls'; entryId: string; value: CallsValue }
  /**
   * A field this version does not ingest (account updates, templates, …): shelved whole with its
   * field name and counted, so an admin sees that something arrived and a later version can read it.
   */
  | { kind: 'ignored'; entryId: string; field: string; change: unknown }
  /** A `messages` change that did not parse: issue paths only (no values, which may be patient data). */
  | { kind: 'invalid'; entryId: string; field: string; issues: string[] };

/** The fields ingest reads, each with the schema of its `value`. */
const INGESTED_FIELDS = {
  messages: MessagesValueSchema,
  smb_message_echoes: MessageEchoesValueSchema,
  calls: CallsValueSchema,
} as const;

/** Splits a parsed webhook into its changes, each ingested value parsed with its field's schema. */
export function parseWebhookChanges(webhook: Webhook): ParsedChange[] {
  const out: ParsedChange[] = [];
  for (const entry of webhook.entry) {
    for (const change of entry.changes) {
      const field = change.field;
      if (!Object.hasOwn(INGESTED_FIELDS, field)) {
        out.push({ kind: 'ignored', entryId: entry.id, field, change });
        continue;
      }
      const schema = INGESTED_FIELDS[field as keyof typeof INGESTED_FIELDS];
      const parsed = schema.safeParse(change.value);
      if (!parsed.success) {
        out.push({ kind: 'invalid', entryId: entry.id, field, issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`) });
      } else if (field === 'messages') out.push({ kind: 'messages', entryId: entry.id, value: parsed.data as MessagesValue });
      else if (field === 'calls') out.push({ kind: 'calls', entryId: entry.id, value: parsed.data as CallsValue });
      else out.push({ kind: 'echoes', entryId: entry.id, value: parsed.data as MessageEchoesValue });
    }
  }
  return out;
}
