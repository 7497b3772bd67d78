import { z } from 'zod';
import { MEDIA_KINDS } from '../media/limits';

/**
 * Request and response shapes of the WhatsApp Cloud API (Graph API) as Meta documents them. The
 * client builds requests from these types and parses every response with these schemas, and the
 * simulator validates what it receives against the same request schemas, so a drift between the two
 * shows up as a failing test rather than a surprise in production.
 */

export const WaIdSchema = z.string().regex(/^\d{6,20}$/, 'expected a WhatsApp id (digits only)');
/**
 * A business-scoped user id as Meta documents it: an ISO 3166 alpha-2 country code, a period, up to
 * 128 alphanumerics (`DE.1502576394655843`); a parent BSUID has `ENT.` after the country
 * (`US.ENT.11815799212886844830`). Disjoint from phone numbers, which are digits only.
 */
export const BsuidSchema = z.string().regex(/^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/, 'expected a business-scoped user id');
export const WamidSchema = z.string().min(1).max(512);
/** Numeric Graph object ids (phone number id, WABA id, media id). */
export const GraphIdSchema = z.string().regex(/^\d{1,32}$/, 'expected a numeric Graph id');

// ---- requests: POST /{phone-number-id}/messages -------------------------------------------------

const ContextSchema = z.object({ message_id: WamidSchema });

const base = {
  messaging_product: z.literal('whatsapp'),
  recipient_type: z.literal('individual').optional(),
  /** A phone number. Meta: `to` wins when both are present, and phone numbers are preferred. */
  to: z.string().min(1).max(32).optional(),
  /** A BSUID or parent BSUID, for users whose phone number Meta does not share. */
  recipient: BsuidSchema.optional(),
  context: ContextSchema.optional(),
  biz_opaque_callback_data: z.string().max(512).optional(),
};

export const TemplateParameterSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string().min(1).max(1024), parameter_name: z.string().optional() }),
  z.object({ type: z.literal('currency'), currency: z.object({ fallback_value: z.string(), code: z.string(), amount_1000: z.number().int() }) }),
  z.object({ type: z.literal('date_time'), date_time: z.object({ fallback_value: z.string() }) }),
  z.object({ type: z.literal('image'), image: z.object({ id: z.string().optional(), link: z.string().optional() }) }),
  z.object({ type: z.literal('document'), document: z.object({ id: z.string().optional(), link: z.string().optional(), filename: z.string().optional() }) }),
  z.object({ type: z.literal('video'), video: z.object({ id: z.string().optional(), link: z.string().optional() }) }),
  z.object({ type: z.literal('payload'), payload: z.string() }),
]);
export type TemplateParameter = z.infer<typeof TemplateParameterSchema>;

export const TemplateComponentSchema = z.object({
  type: z.enum(['header', 'body', 'button']),
  sub_type: z.enum(['quick_reply', 'url', 'copy_code']).optional(),
  index: z.union([z.string(), z.number()]).optional(),
  parameters: z.array(TemplateParameterSchema).default([]),
});
export type TemplateComponent = z.input<typeof TemplateComponentSchema>;

const MediaObjectSchema = z.object({
  id: GraphIdSchema,
  caption: z.string().max(1024).optional(),
  filename: z.string().max(240).optional(),
});

export const SendMessageRequestSchema = z
  .discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('text'), text: z.object({ body: z.string().min(1).max(4096), preview_url: z.boolean().optional() }) }),
  z.object({
    ...base,
    type: z.literal('template'),
    template: z.object({
      name: z.string().min(1).max(512),
      language: z.object({ code: z.string().min(2).max(15), policy: z.literal('deterministic').optional() }),
      components: z.array(TemplateComponentSchema).optional(),
    }),
  }),
  z.object({ ...base, type: z.literal('image'), image: MediaObjectSchema.omit({ filename: true }) }),
  z.object({ ...base, type: z.literal('video'), video: MediaObjectSchema.omit({ filename: true }) }),
  z.object({ ...base, type: z.literal('document'), document: MediaObjectSchema }),
  z.object({ ...base, type: z.literal('audio'), audio: MediaObjectSchema.pick({ id: true }) }),
  z.object({ ...base, type: z.literal('sticker'), sticker: MediaObjectSchema.pick({ id: true }) }),
  z.object({ ...base, type: z.literal('reaction'), reaction: z.object({ message_id: WamidSchema, emoji: z.string().max(16) }) }),
  ])
  .refine((r) => r.to !== undefined || r.recipient !== undefined, { message: 'a message needs `to` (phone number) or `recipient` (BSUID)', path: ['to'] });
export type SendMessageRequest = z.infer<typeof SendMessageRequestSchema>;

/** Who a send goes to: exactly one of Meta's two addressing fields. */
export type Addressee = { to: string; recipient?: undefined } | { recipient: string; to?: undefined };

/**
 * The addressing fields for a contact: the phone number when we have one (Meta recommends it, and
 * it keeps phone numbers flowing in later webhooks), else the business-scoped user id.
 */
export function addresseeOf(contact: { waId: string | null; userId: string | null }): Addressee | null {
  if (contact.waId) return { to: contact.waId };
  if (contact.userId && BsuidSchema.safeParse(contact.userId).success) return { recipient: contact.userId };
  return null;
}

/** The addressee for one stored id, phone number or BSUID (the two forms cannot be confused). */
export function addresseeFromId(id: string): Addressee {
  return BsuidSchema.safeParse(id).success ? { recipient: id } : { to: id };
}

export const MarkReadRequestSchema = z.object({
  messaging_product: z.literal('whatsapp'),
  status: z.literal('read'),
  message_id: WamidSchema,
  typing_indicator: z.object({ type: z.literal('text') }).optional(),
});
export type MarkReadRequest = z.infer<typeof MarkReadRequestSchema>;

export const MediaUploadKindSchema = z.enum(MEDIA_KINDS);

// ---- responses ------------------------------------------------------------------------------------

export const SendMessageResponseSchema = z.object({
  messaging_product: z.literal('whatsapp'),
  // `wa_id` answers a send by phone number, `user_id` one by BSUID. Neither is required: the wamid
  // is what settles a send, and refusing an accepted message over a missing echo would report a
  // delivered reply as unconfirmed.
  contacts: z.array(z.looseObject({ input: z.string(), wa_id: z.string().optional(), user_id: z.string().optional() })).min(1),
  messages: z
    .array(z.object({ id: WamidSchema, message_status: z.enum(['accepted', 'held_for_quality_assessment', 'paused']).optional() }))
    .min(1),
});
export type SendMessageResponse = z.infer<typeof SendMessageResponseSchema>;

export const SuccessResponseSchema = z.object({ success: z.literal(true) });

export const MediaUploadResponseSchema = z.object({ id: GraphIdSchema });

export const MediaInfoResponseSchema = z.object({
  messaging_product: z.literal('whatsapp'),
  url: z.url({ protocol: /^https?$/ }),
  mime_type: z.string().min(1),
  /** Hex in the media endpoint; webhooks carry base64. `sha256Bytes` accepts both. */
  sha256: z.string().min(1),
  // Meta has returned both a number and a numeric string here over API versions.
  file_size: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]),
  id: GraphIdSchema,
});
export type MediaInfoResponse = z.infer<typeof MediaInfoResponseSchema>;

export const TemplateComponentDefSchema = z.looseObject({
  type: z.string(),
  format: z.string().optional(),
  text: z.string().optional(),
});

export const MessageTemplateSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  language: z.string(),
  status: z.string(),
  category: z.string(),
  components: z.array(TemplateComponentDefSchema).default([]),
});
export type MessageTemplate = z.infer<typeof MessageTemplateSchema>;

/** `GET /{waba-id}/phone_numbers`: the business's numbers as Meta lists them. */
export const PhoneNumberPageSchema = z.object({
  data: z.array(
    z.looseObject({
      id: z.string(),
      display_phone_number: z.string().optional(),
      verified_name: z.string().optional(),
      quality_rating: z.string().optional(),
    }),
  ),
});

export const TemplatePageSchema = z.object({
  data: z.array(MessageTemplateSchema),
  paging: z
    .object({
      cursors: z.object({ before: z.string().optional(), after: z.string().optional() }).optional(),
      next: z.string().optional(),
      previous: z.string().optional(),
    })
    .optional(),
});

export const GraphErrorBodySchema = z.object({
  error: z.looseObject({
    message: z.string().optional(),
    type: z.string().optional(),
    code: z.number().int(),
    error_subcode: z.number().int().optional(),
    error_data: z.looseObject({ messaging_product: z.string().optional(), details: z.string().optional() }).optional(),
    error_user_title: z.string().optional(),
    error_user_msg: z.string().optional(),
    fbtrace_id: z.string().optional(),
  }),
});
export type GraphErrorBody = z.infer<typeof GraphErrorBodySchema>;

/** Meta's media sha256 as raw bytes, whether it came as hex (media endpoint) or base64 (webhooks). */
export function sha256Bytes(value: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return bytes.length === 32 ? bytes : null;
  }
  return null;
}
