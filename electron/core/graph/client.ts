import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import type { MediaKind } from '../media/limits';
import { GraphError, MediaTooLargeError, graphErrorFromResponse, networkError, unexpectedResponse } from './errors';
import {
  MarkReadRequestSchema,
  MediaInfoResponseSchema,
  MediaUploadResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
  SuccessResponseSchema,
  PhoneNumberPageSchema,
  TemplatePageSchema,
  sha256Bytes,
  type Addressee,
  type MessageTemplate,
  type SendMessageRequest,
  type TemplateComponent,
} from './schemas';
import { multipartBody, type MultipartBody } from './multipart';

export interface GraphClientDeps {
  /** `https://graph.facebook.com` in production, the simulator's URL in tests and the demo. */
  baseUrl: string;
  /** Graph API version path segment, e.g. `v23.0`. */
  apiVersion: string;
  /** Reads the current token from the keychain; called per request so a new token applies at once. */
  getAccessToken(): Promise<string>;
  logger: Logger;
  /** Per-request timeout for JSON calls. */
  timeoutMs?: number;
  /** Timeout for a whole media upload or download. */
  mediaTimeoutMs?: number;
  /**
   * Hosts (besides the Graph API's own) that may receive the bearer token when downloading media.
   * Meta serves media from lookaside.fbsbx.com; a URL anywhere else is refused, so a tampered media
   * URL cannot exfiltrate the token.
   */
  mediaHosts?: readonly string[];
  fetch?: typeof fetch;
}

export interface SentMessage {
  wamid: string;
  /** The recipient's WhatsApp id as Meta resolved it (may differ from the number we sent to); null for a BSUID send. */
  waId: string | null;
  /** The business-scoped user id Meta echoes for a send by `recipient`; null for a send by phone number. */
  userId: string | null;
}

export interface MediaInfo {
  id: string;
  url: string;
  mimeType: string;
  /** Meta's SHA-256 of the file, null when it did not parse as hex or base64. */
  sha256: Buffer | null;
  fileSize: number;
}

/** `to` a phone number or `recipient` a business-scoped user id: exactly one. */
type SendCommon = Addressee & {
  phoneNumberId: string;
  /** Echoed by Meta in status webhooks: the outbox puts its row id here to reconcile after a crash. */
  callbackData?: string;
};

export interface PhoneNumberInfo {
  id: string;
  displayPhoneNumber: string | null;
  verifiedName: string | null;
  qualityRating: string | null;
}

export interface GraphClient {
  send(phoneNumberId: string, request: SendMessageRequest): Promise<SentMessage>;
  sendText(p: SendCommon & { body: string; replyToWamid?: string; previewUrl?: boolean }): Promise<SentMessage>;
  sendTemplate(p: SendCommon & { name: string; language: string; components?: TemplateComponent[] }): Promise<SentMessage>;
  sendMedia(
    p: SendCommon & { kind: MediaKind; mediaId: string; caption?: string; filename?: string; replyToWamid?: string },
  ): Promise<SentMessage>;
  sendReaction(p: SendCommon & { messageWamid: string; emoji: string }): Promise<SentMessage>;
  markRead(p: { phoneNumberId: string; wamid: string }): Promise<void>;
  uploadMedia(p: { phoneNumberId: string; bytes: Uint8Array; mimeType: string; filename: string }): Promise<{ mediaId: string }>;
  getMediaInfo(mediaId: string): Promise<MediaInfo>;
  /** Downloads media bytes, refusing (MediaTooLargeError) as soon as they pass `maxBytes`. */
  downloadMedia(url: string, opts: { maxBytes: number }): Promise<Buffer>;
  /** Every template of the WhatsApp Business Account, all pages; `status` filters on Meta's side. */
  listTemplates(p: { wabaId: string; status?: 'APPROVED' }): Promise<MessageTemplate[]>;
  /** The business account's phone numbers with their display name and quality rating. */
  listPhoneNumbers(p: { wabaId: string }): Promise<PhoneNumberInfo[]>;
}

const TEMPLATE_PAGE_LIMIT = 100;
/** Guards against a server that keeps handing out `next` links. */
const MAX_TEMPLATE_PAGES = 200;

/**
 * A typed client for the WhatsApp Cloud API. Every response is parsed with zod; every failure
 * becomes a `GraphError` whose `kind` says retry, pause for a new token, or give up. It logs
 * operation names, HTTP status, Meta codes and timings, never recipients, text or the token.
 */
export function createGraphClient(deps: GraphClientDeps): GraphClient {
  const doFetch = deps.fetch ?? fetch;
  const base = deps.baseUrl.replace(/\/+$/, '');
  const timeoutMs = deps.timeoutMs ?? 15_000;
  const mediaTimeoutMs = deps.mediaTimeoutMs ?? 120_000;
  const graphHost = new URL(base).host;
  const mediaHosts = new Set([graphHost, ...(deps.mediaHosts ?? ['lookaside.fbsbx.com'])]);
  const log = deps.logger.child({ component: 'graph' });

  function url(...segments: string[]): string {
    return [base, deps.apiVersion, ...segments.map(encodeURIComponent)].join('/');
  }

  async function call(
    op: string,
    target: string,
    init: { method: 'GET' | 'POST'; json?: unknown; multipart?: MultipartBody; timeout?: number },
  ): Promise<Response> {
    const token = await deps.getAccessToken();
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let body: string | ReadableStream<Uint8Array> | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.multipart) {
      const { parts, length, contentType } = init.multipart;
      headers['content-type'] = contentType;
      // A stream hands undici the file's own memory (a buffer body it would copy whole); with the
      // length given, the request still goes out with a Content-Length, not chunked.
      headers['content-length'] = String(length);
      body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const part of parts) controller.enqueue(part);
          controller.close();
        },
      });
    }
    const started = Date.now();
    let res: Response;
    try {
      res = await doFetch(target, {
        method: init.method,
        headers,
        body,
        signal: AbortSignal.timeout(init.timeout ?? timeoutMs),
        redirect: 'error',
        ...(body instanceof ReadableStream ? { duplex: 'half' as const } : {}),
      });
    } catch (err) {
      const e = networkError(err);
      log.warn({ op, ms: Date.now() - started, err: e.title }, 'graph call failed');
      throw e;
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      const e = graphErrorFromResponse(res.status, text);
      log.warn({ op, status: res.status, metaCode: e.metaCode, kind: e.kind, fbtrace: e.fbtraceId, ms: Date.now() - started }, 'graph call refused');
      throw e;
    }
    log.debug({ op, status: res.status, ms: Date.now() - started }, 'graph call ok');
    return res;
  }

  async function json<T>(op: string, res: Response, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): Promise<T> {
    let value: unknown;
    try {
      value = await res.json();
    } catch {
      throw unexpectedResponse(op, res.status);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw unexpectedResponse(op, res.status);
    return parsed.data;
  }

  async function send(phoneNumberId: string, request: SendMessageRequest): Promise<SentMessage> {
    const checked = SendMessageRequestSchema.safeParse(request);
    if (!checked.success) throw new CodedError('VALIDATION_FAILED', `Message of type ${request.type} is not valid for WhatsApp`);
    const res = await call(`send.${request.type}`, url(phoneNumberId, 'messages'), { method: 'POST', json: checked.data });
    const out = await json(`send.${request.type}`, res, SendMessageResponseSchema);
    const first = out.messages[0];
    const contact = out.contacts[0];
    if (!first || !contact) throw unexpectedResponse('send', res.status);
    return { wamid: first.id, waId: contact.wa_id ?? null, userId: contact.user_id ?? null };
  }

  function common(p: SendCommon, replyToWamid?: string) {
    return {
      messaging_product: 'whatsapp' as const,
      recipient_type: 'individual' as const,
      ...(p.to !== undefined ? { to: p.to } : { recipient: p.recipient }),
      ...(replyToWamid ? { context: { message_id: replyToWamid } } : {}),
      ...(p.callbackData ? { biz_opaque_callback_data: p.callbackData } : {}),
    };
  }

  return {
    send,

    sendText(p) {
      return send(p.phoneNumberId, { ...common(p, p.replyToWamid), type: 'text', text: { body: p.body, preview_url: p.previewUrl ?? false } });
    },

    sendTemplate(p) {
      return send(p.phoneNumberId, {
        ...common(p),
        type: 'template',
        template: {
          name: p.name,
          language: { code: p.language },
          ...(p.components && p.components.length > 0
            ? { components: p.components.map((c) => ({ ...c, parameters: c.parameters ?? [] })) }
            : {}),
        },
      });
    },

    sendMedia(p) {
      const c = common(p, p.replyToWamid);
      const caption = p.caption ? { caption: p.caption } : {};
      switch (p.kind) {
        case 'image':
          return send(p.phoneNumberId, { ...c, type: 'image', image: { id: p.mediaId, ...caption } });
        case 'video':
          return send(p.phoneNumberId, { ...c, type: 'video', video: { id: p.mediaId, ...caption } });
        case 'document':
          return send(p.phoneNumberId, { ...c, type: 'document', document: { id: p.mediaId, ...caption, ...(p.filename ? { filename: p.filename } : {}) } });
        case 'audio':
          return send(p.phoneNumberId, { ...c, type: 'audio', audio: { id: p.mediaId } });
        case 'sticker':
          return send(p.phoneNumberId, { ...c, type: 'sticker', sticker: { id: p.mediaId } });
      }
    },

    sendReaction(p) {
      return send(p.phoneNumberId, { ...common(p), type: 'reaction', reaction: { message_id: p.messageWamid, emoji: p.emoji } });
    },

    async markRead(p) {
      const body = MarkReadRequestSchema.parse({ messaging_product: 'whatsapp', status: 'read', message_id: p.wamid });
      const res = await call('markRead', url(p.phoneNumberId, 'messages'), { method: 'POST', json: body });
      await json('markRead', res, SuccessResponseSchema);
    },

    async uploadMedia(p) {
      const multipart = multipartBody({ messaging_product: 'whatsapp', type: p.mimeType }, { name: 'file', filename: p.filename, type: p.mimeType, bytes: p.bytes });
      const res = await call('media.upload', url(p.phoneNumberId, 'media'), { method: 'POST', multipart, timeout: mediaTimeoutMs });
      const out = await json('media.upload', res, MediaUploadResponseSchema);
      return { mediaId: out.id };
    },

    async getMediaInfo(mediaId) {
      const res = await call('media.info', url(mediaId), { method: 'GET' });
      const out = await json('media.info', res, MediaInfoResponseSchema);
      return { id: out.id, url: out.url, mimeType: out.mime_type, sha256: sha256Bytes(out.sha256), fileSize: out.file_size };
    },

    async downloadMedia(mediaUrl, opts) {
      const target = new URL(mediaUrl);
      const local = target.hostname === '127.0.0.1' || target.hostname === 'localhost';
      if (!mediaHosts.has(target.host) || (target.protocol !== 'https:' && !local)) {
        throw new GraphError('permanent', 'WHATSAPP_REJECTED', 'The media URL points outside Meta; refused to send the access token there', null, 'Untrusted media URL', null);
      }
      const res = await call('media.download', target.toString(), { method: 'GET', timeout: mediaTimeoutMs });
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new MediaTooLargeError(declared, opts.maxBytes);
      }
      const chunks: Uint8Array[] = [];
      let total = 0;
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (err) {
            throw networkError(err);
          }
          if (chunk.done) break;
          total += chunk.value.byteLength;
          if (total > opts.maxBytes) {
            await reader.cancel().catch(() => undefined);
            throw new MediaTooLargeError(total, opts.maxBytes);
          }
          chunks.push(chunk.value);
        }
      }
      return Buffer.concat(chunks, total);
    },

    async listPhoneNumbers(p) {
      const q = new URLSearchParams({ fields: 'id,display_phone_number,verified_name,quality_rating' });
      const res = await call('phone_numbers.list', `${url(p.wabaId, 'phone_numbers')}?${q}`, { method: 'GET' });
      const out = await json('phone_numbers.list', res, PhoneNumberPageSchema);
      return out.data.map((n) => ({
        id: n.id,
        displayPhoneNumber: n.display_phone_number ?? null,
        verifiedName: n.verified_name ?? null,
        qualityRating: n.quality_rating ?? null,
      }));
    },

    async listTemplates(p) {
      const all: MessageTemplate[] = [];
      let after: string | undefined;
      for (let page = 0; page < MAX_TEMPLATE_PAGES; page++) {
        // The cursor, not Meta's `next` link, drives paging: `next` embeds the access token in its
        // query string and could name another host; we keep the token in the header, to our base.
        const q = new URLSearchParams({ limit: String(TEMPLATE_PAGE_LIMIT), fields: 'id,name,language,status,category,components' });
        if (p.status) q.set('status', p.status);
        if (after) q.set('after', after);
        const res = await call('templates.list', `${url(p.wabaId, 'message_templates')}?${q}`, { method: 'GET' });
        const out = await json('templates.list', res, TemplatePageSchema);
        all.push(...out.data);
        const nextAfter = out.paging?.next ? out.paging.cursors?.after : undefined;
        if (!nextAfter || nextAfter === after) return all;
        after = nextAfter;
      }
      throw unexpectedResponse('templates.list (too many pages)', 200);
    },
  };
}
