import { z } from 'zod';
import { MEDIA_KINDS } from '../media/limits';

/**
 * Request and response shapes of the WhatsApp Cloud API (Graph API) as Meta documents them. The
 * client builds requests from these types and parses every response with these schemas, and the
 * simulator validates what it receives against the same request schemas, so a drift between the two
 * shows up as a failing test rather than a surprise in production.
 */

export const WaIdSchema = z.string().regex(/^\d{6,20}$/, 'expected a WhatsApp id (digits only)');
export const WamidSchema = z.string().min(1).max(512);
/** Numeric Graph object ids (phone number id, WABA id, media id). */
export const GraphIdSchema = z.string().regex(/^\d{1,32}$/, 'expected a numeric Graph id');

// ---- requests: POST /{phone-number-id}/messages -------------------------------------------------

const ContextSchema = z.object({ message_id: WamidSchema });

const base = {
  messaging_product: z.literal('whatsapp'),
  recipient_type: z.literal('individual').optional(),
  to: z.string().min(1).max(32),
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

export const SendMessageRequestSchema = z.discriminatedUnion('type', [
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
]);
export type SendMessageRequest = z.infer<typeof SendMessageRequestSchema>;

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
  contacts: z.array(z.object({ input: z.string(), wa_id: z.string() })).min(1),
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
