import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parsePhoneNumber } from 'libphonenumber-js';
import { BsuidSchema, MarkReadRequestSchema, SendMessageRequestSchema, type SendMessageRequest } from '../graph/schemas';
import { MEDIA_MAX_BYTES, mediaKindForMime, type MediaKind } from '../media/limits';
import { CUSTOMER_SERVICE_WINDOW_MS } from '../window';
import { reactionDeliveryProblem, reactionShapeProblem, type SimInboundMessage } from './graphSimulatorReactions';

/**
 * A stand-in for Meta's WhatsApp Cloud API on 127.0.0.1, for tests and the demo. It speaks Meta's
 * request and response shapes, checks the bearer token the way the Graph API does, serves media
 * behind expiring URLs, pages templates with cursors, enforces the 24-hour window the way Meta does
 * (accept, then a `failed` status webhook with 131047) and posts status and inbound webhooks signed
 * with the app secret over the exact bytes sent. Patients may be addressed by phone number (`to`) or
 * by business-scoped user id (`recipient`, answered with `contacts[].user_id` and statuses carrying
 * `recipient_user_id`), and authentication templates to a BSUID are refused with 131062 as Meta does. Faults are injected per route so retry paths can be
 * exercised against a real socket.
 */

export type SimStatus = 'sent' | 'delivered' | 'read' | 'failed';
export type SimRoute = 'messages' | 'media.upload' | 'media.info' | 'media.download' | 'templates' | 'phone_numbers';

export type SimFault =
  /** A Graph error body with this Meta code (190 → 401, others → 400, or `httpStatus`). */
  | { type: 'graph'; code: number; subcode?: number; httpStatus?: number; message?: string }
  /** A bare HTTP error with an HTML body, as a load balancer answers. */
  | { type: 'http'; status: number }
  /** The connection is destroyed before the request is looked at. */
  | { type: 'drop' }
  /** The send is accepted and recorded, then the connection is destroyed before the answer. */
  | { type: 'dropAfterAccept' }
  /** The send is accepted, then fails asynchronously with 131047 (as outside the window). */
  | { type: 'reengagement' }
  /** The send is accepted, then a `failed` status webhook reports this Meta code (e.g. 131062). */
  | { type: 'failedStatus'; code: number; title: string; details?: string };

export interface RecordedSend {
  wamid: string;
  phoneNumberId: string;
  /** The request's `to` (phone number), null for a send by `recipient`. */
  to: string | null;
  /** The request's `recipient` (BSUID) when Meta used it, i.e. when no `to` was given. */
  recipient: string | null;
  /** The phone number Meta resolved, null for a BSUID send. */
  waId: string | null;
  /** The BSUID the send went to, null for a send by phone number. */
  userId: string | null;
  type: SendMessageRequest['type'];
  request: SendMessageRequest;
  callbackData: string | null;
  at: number;
}

export interface SimTemplate {
  id?: string;
  name: string;
  language: string;
  status: 'APPROVED' | 'PENDING' | 'REJECTED' | 'PAUSED' | 'DISABLED';
  category: 'UTILITY' | 'MARKETING' | 'AUTHENTICATION';
  components: Array<{ type: string; format?: string; text?: string; example?: { body_text?: string[][] } }>;
}

interface StoredMedia {
  id: string;
  bytes: Buffer;
  mimeType: string;
  /** What the media endpoint reports; differs from the real hash only when a test tampers with it. */
  sha256Hex: string;
}

export interface WebhookDelivery {
  body: string;
  signature: string;
  status: number;
  attempts: number;
}

export interface GraphSimulatorOptions {
  accessToken: string;
  phoneNumberId: string;
  displayPhoneNumber?: string;
  /** The business name Meta shows for the number (`verified_name`). */
  verifiedName?: string;
  /** Meta's quality rating for the number: GREEN, YELLOW, RED or UNKNOWN. */
  qualityRating?: string;
  wabaId: string;
  /** For signing webhooks; without it and `webhookUrl`, the simulator posts no webhooks. */
  appSecret?: string;
  webhookUrl?: string;
  /** How long a media download URL works. Meta: five minutes. */
  mediaUrlTtlMs?: number;
  /** Templates per page when the client asks for more. */
  templatePageSize?: number;
  templates?: SimTemplate[];
  /** Refuse free-form sends to recipients silent for 24 h, as Meta does (default true). */
  enforceWindow?: boolean;
  /**
   * Reads a media upload no faster than this many bits per second, as a clinic's uplink to Meta
   * would carry it (benchmarks; default: as fast as loopback goes).
   */
  uploadBitsPerSecond?: number;
  /** Post sent/delivered(/read) webhooks by themselves after each accepted send. */
  autoStatuses?: false | { afterMs: number; statuses: Array<'sent' | 'delivered' | 'read'> };
  now?: () => number;
  logger?: Logger;
}

export interface GraphSimulator {
  listen(port?: number): Promise<string>;
  close(): Promise<void>;
  /** Base URL (`http://127.0.0.1:PORT`) to give the client as its Graph base. */
  readonly url: string;
  readonly sends: readonly RecordedSend[];
  readonly reads: readonly string[];
  readonly uploads: ReadonlyArray<{ id: string; mimeType: string; size: number; filename: string | null }>;
  readonly webhooks: readonly WebhookDelivery[];
  /** Requests seen per route, including refused ones. */
  readonly hits: Readonly<Record<SimRoute | 'unknown', number>>;
  /** After `skip` good requests, the next `times` requests to `route` fail with `fault`. */
  inject(route: SimRoute, fault: SimFault, times?: number, skip?: number): void;
  /** A business account that exists but that the token may not use: Meta answers (#200) Permissions error. */
  addForeignWaba(wabaId: string): void;
  /** Makes the current token invalid (190/463 from now on) and, if given, accepts a new one. */
  rotateToken(newToken?: string): void;
  /** While on, accepted sends are recorded but never answered: the moment to SIGKILL a client. */
  holdResponses(on: boolean): void;
  /**
   * Remembers that this patient (phone number or BSUID) wrote at `at`, opening their 24-hour window;
   * with `wamid`, that message is one the clinic may react to (as a message from `postInbound` is).
   */
  noteInbound(id: string, at?: number, wamid?: string): void;
  /** Media that inbound messages can reference. `sha256Hex` lets a test make Meta's hash lie. */
  addMedia(p: { bytes: Buffer; mimeType: string; sha256Hex?: string }): string;
  setTemplates(templates: SimTemplate[]): void;
  /** Posts a signed status webhook for an accepted send. Resolves with the relay's HTTP status. */
  postStatus(wamid: string, status: SimStatus, error?: { code: number; title: string; details?: string }): Promise<number>;
  /** Posts a signed inbound message webhook, as a patient writing from WhatsApp. */
  postInbound(p: InboundSpec): Promise<{ wamid: string; status: number }>;
  /**
   * Posts a `system` message as Meta does for identity changes (no contacts array), e.g.
   * `{ type: 'user_changed_user_id', user_id, previous_user_id }`. The new ids open the window too.
   */
  postSystem(p: InboundSender & { system: { type: string; body?: string } & Record<string, unknown>; at?: number }): Promise<{ wamid: string; status: number }>;
  waitForSends(count: number, timeoutMs?: number): Promise<void>;
}

/**
 * Who writes: a phone number (`from`), a business-scoped user id (`userId`), or both, as Meta sends
 * them since 2026. Without `from` the patient is one whose phone number Meta does not share.
 */
export type InboundSender = { from: string; userId?: string; username?: string } | { from?: undefined; userId: string; username?: string };

export type InboundSpec = InboundSender &
  (
    | { name: string; text: string; at?: number; replyToWamid?: string }
    | { name: string; media: { kind: MediaKind; mediaId: string; caption?: string; filename?: string }; at?: number }
  );

const PATH = {
  messages: /^\/v\d+\.\d+\/(\d+)\/messages$/,
  media: /^\/v\d+\.\d+\/(\d+)\/media$/,
  templates: /^\/v\d+\.\d+\/(\d+)\/message_templates$/,
  phoneNumbers: /^\/v\d+\.\d+\/(\d+)\/phone_numbers$/,
  node: /^\/v\d+\.\d+\/(\d+)$/,
  download: /^\/whatsapp_business\/attachments\/?$/,
};

const JSON_BODY_LIMIT = 1024 * 1024;
const UPLOAD_BODY_LIMIT = MEDIA_MAX_BYTES.document + 1024 * 1024;

/**
 * Meta sends compact JSON with `/` escaped and every non-ASCII character as `\uXXXX`. Signing these
 * exact bytes keeps the receiving side honest about verifying the raw body, not a re-serialisation.
 */
export function metaJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\//g, '\\/')
    .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function signWebhook(appSecret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

function makeWamid(userRef: string): string {
  const inner = Buffer.concat([
    Buffer.from([0x18, userRef.length]),
    Buffer.from(userRef),
    Buffer.from([0x15, 0x02, 0x00, 0x11, 0x18, 0x12]),
    Buffer.from(randomBytes(9).toString('hex').toUpperCase()),
    Buffer.from([0x00]),
  ]);
  return `wamid.${inner.toString('base64')}`;
}

function graphId(): string {
  return `${1 + Math.floor(Math.random() * 9)}${Array.from(randomBytes(15), (b) => b % 10).join('')}`;
}

export function createGraphSimulator(opts: GraphSimulatorOptions): GraphSimulator {
  const now = opts.now ?? Date.now;
  const mediaTtl = opts.mediaUrlTtlMs ?? 5 * 60_000;
  const pageSize = opts.templatePageSize ?? 25;
  const enforceWindow = opts.enforceWindow ?? true;
  const urlKey = randomBytes(32);
  let token = opts.accessToken;
  const retiredTokens = new Set<string>();
  let templates: SimTemplate[] = (opts.templates ?? []).map((t) => ({ ...t, id: t.id ?? graphId() }));
  const sends: RecordedSend[] = [];
  const reads: string[] = [];
  const uploads: Array<{ id: string; mimeType: string; size: number; filename: string | null }> = [];
  const webhooks: WebhookDelivery[] = [];
  const hits: Record<SimRoute | 'unknown', number> = { messages: 0, 'media.upload': 0, 'media.info': 0, 'media.download': 0, templates: 0, phone_numbers: 0, unknown: 0 };
  const faults = new Map<SimRoute, Array<SimFault | null>>();
  const foreignWabas = new Set<string>();
  const media = new Map<string, StoredMedia>();
  const lastInbound = new Map<string, number>();
  /** Inbound messages by wamid: what a reaction may target. */
  const inboundMessages = new Map<string, SimInboundMessage>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const held: ServerResponse[] = [];
  const sendWaiters: Array<() => void> = [];
  let hold = false;
  let baseUrl = '';
  const log = opts.logger?.child({ component: 'graph-simulator' });

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.error({ err: err instanceof Error ? err.message : 'unknown' }, 'simulator handler failed');
      if (!res.headersSent) graphError(res, 500, 1, 'An unknown error occurred');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  }

  function sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function graphError(res: ServerResponse, status: number, code: number, message: string, extra: { subcode?: number; details?: string; type?: string } = {}): void {
    sendJson(res, status, {
      error: {
        message,
        type: extra.type ?? 'OAuthException',
        code,
        ...(extra.details ? { error_data: { messaging_product: 'whatsapp', details: extra.details } } : {}),
        ...(extra.subcode !== undefined ? { error_subcode: extra.subcode } : {}),
        fbtrace_id: randomBytes(12).toString('base64url'),
      },
    });
  }

  function takeFault(route: SimRoute): SimFault | undefined {
    return faults.get(route)?.shift() ?? undefined;
  }

  /** Applies a fault that acts before the request is processed; true when the response is done. */
  function applyEarlyFault(res: ServerResponse, req: IncomingMessage, fault: SimFault | undefined): boolean {
    if (!fault) return false;
    switch (fault.type) {
      case 'drop':
        req.socket.destroy();
        return true;
      case 'http':
        res.writeHead(fault.status, { 'content-type': 'text/html' });
        res.end('<html><body>Service Unavailable</body></html>');
        return true;
      case 'graph': {
        const status = fault.httpStatus ?? (fault.code === 190 ? 401 : 400);
        graphError(res, status, fault.code, fault.message ?? `(#${fault.code}) Injected error`, {
          ...(fault.subcode !== undefined ? { subcode: fault.subcode } : {}),
          details: 'Injected by the Graph API simulator',
        });
        return true;
      }
      default:
        return false;
    }
  }

  function bearer(req: IncomingMessage, query: URLSearchParams): string | null {
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ')) return h.slice(7);
    return query.get('access_token');
  }

  /** The Graph API answers 401 with code 190 for a missing, unknown or expired token. */
  function authorised(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): boolean {
    const presented = bearer(req, query);
    if (presented === token) return true;
    if (presented && retiredTokens.has(presented)) {
      graphError(res, 401, 190, 'Error validating access token: Session has expired.', { subcode: 463 });
    } else if (presented) {
      graphError(res, 401, 190, 'Invalid OAuth access token - Cannot parse access token', {});
    } else {
      graphError(res, 401, 190, 'An active access token must be used to query information about the current user.', {});
    }
    return false;
  }

  async function readBody(req: IncomingMessage, limit: number, bitsPerSecond?: number): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let size = 0;
    const started = performance.now();
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) return null;
      chunks.push(chunk as Buffer);
      // Not reading holds the rest in the socket: TCP's window slows the sender as a slow link would.
      const due = bitsPerSecond ? started + (size * 8 * 1000) / bitsPerSecond - performance.now() : 0;
      if (due > 1) await new Promise((resolve) => setTimeout(resolve, due));
    }
    return Buffer.concat(chunks);
  }

  function routeOf(method: string, path: string): { route: SimRoute; id: string } | null {
    let m: RegExpMatchArray | null;
    if (method === 'POST' && (m = path.match(PATH.messages))) return { route: 'messages', id: m[1]! };
    if (method === 'POST' && (m = path.match(PATH.media))) return { route: 'media.upload', id: m[1]! };
    if (method === 'GET' && (m = path.match(PATH.templates))) return { route: 'templates', id: m[1]! };
    if (method === 'GET' && (m = path.match(PATH.phoneNumbers))) return { route: 'phone_numbers', id: m[1]! };
    if (method === 'GET' && (m = path.match(PATH.node))) return { route: 'media.info', id: m[1]! };
    if (method === 'GET' && PATH.download.test(path)) return { route: 'media.download', id: '' };
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://simulator');
    const r = routeOf(req.method ?? 'GET', u.pathname);
    if (!r) {
      hits.unknown += 1;
      graphError(res, 400, 100, `Unsupported ${req.method} request.`, { type: 'GraphMethodException' });
      return;
    }
    hits[r.route] += 1;
    const fault = takeFault(r.route);
    if (applyEarlyFault(res, req, fault)) return;
    if (!authorised(req, res, u.searchParams)) return;
    switch (r.route) {
      case 'messages':
        return onMessages(req, res, r.id, fault);
      case 'media.upload':
        return onUpload(req, res, r.id);
      case 'media.info':
        return onMediaInfo(res, r.id);
      case 'media.download':
        return onDownload(res, u.searchParams);
      case 'templates':
        return onTemplates(res, r.id, u.searchParams);
      case 'phone_numbers':
        return onPhoneNumbers(res, r.id);
    }
  }

  /** Meta's answer for a business account the token cannot see or may not use. */
  function wabaRefused(res: ServerResponse, wabaId: string): boolean {
    if (foreignWabas.has(wabaId)) {
      graphError(res, 403, 200, '(#200) Permissions error', { type: 'OAuthException' });
      return true;
    }
    if (wabaId !== opts.wabaId) {
      graphError(res, 400, 100, `Unsupported get request. Object with ID '${wabaId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, {
        type: 'GraphMethodException',
        subcode: 33,
      });
      return true;
    }
    return false;
  }

  function onPhoneNumbers(res: ServerResponse, wabaId: string): void {
    if (wabaRefused(res, wabaId)) return;
    const digits = opts.displayPhoneNumber ?? '15550001234';
    let display = `+${digits}`;
    try {
      display = parsePhoneNumber(display).formatInternational();
    } catch {
      // not a number libphonenumber knows: Meta would show the digits as given
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        data: [
          {
            verified_name: opts.verifiedName ?? 'Test clinic',
            code_verification_status: 'VERIFIED',
            display_phone_number: display,
            quality_rating: opts.qualityRating ?? 'GREEN',
            platform_type: 'CLOUD_API',
            throughput: { level: 'STANDARD' },
            id: opts.phoneNumberId,
          },
        ],
        paging: { cursors: { before: 'QVFIUk', after: 'QVFIUk' } },
      }),
    );
  }

  function knownPhone(res: ServerResponse, id: string): boolean {
    if (id === opts.phoneNumberId) return true;
    graphError(res, 400, 100, `Unsupported post request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, {
      type: 'GraphMethodException',
      subcode: 33,
    });
    return false;
  }

  async function onMessages(req: IncomingMessage, res: ServerResponse, phoneNumberId: string, fault: SimFault | undefined): Promise<void> {
    const raw = await readBody(req, JSON_BODY_LIMIT);
    if (!raw) return graphError(res, 413, 100, '(#100) Request body too large');
    if (!knownPhone(res, phoneNumberId)) return;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return graphError(res, 400, 100, '(#100) Invalid parameter', { details: 'Request body is not valid JSON' });
    }
    const read = MarkReadRequestSchema.safeParse(body);
    if (read.success) {
      reads.push(read.data.message_id);
      return sendJson(res, 200, { success: true });
    }
    const parsed = SendMessageRequestSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return graphError(res, 400, 100, '(#100) Invalid parameter', { details: `Parameter ${issue?.path.join('.') ?? '?'} is invalid` });
    }
    const request = parsed.data;
    if (request.type === 'reaction') {
      const problem = reactionShapeProblem(body);
      if (problem) return graphError(res, 400, 100, '(#100) Invalid parameter', { details: problem });
    }
    // As Meta: `to` wins over `recipient`; a BSUID send is one without `to`.
    const waId = request.to !== undefined ? request.to.replace(/\D/g, '') : null;
    const userId = request.to === undefined ? (request.recipient ?? null) : null;
    if (waId !== null && waId.length < 6) return graphError(res, 400, 100, '(#100) Invalid parameter', { details: 'Invalid recipient' });
    const refusal = checkContent(request, userId !== null);
    if (refusal) return graphError(res, 400, refusal.code, refusal.message, { details: refusal.details });

    const addressee = (waId ?? userId)!;
    const wamid = makeWamid(addressee);
    const at = now();
    const send: RecordedSend = {
      wamid,
      phoneNumberId,
      to: request.to ?? null,
      recipient: userId,
      waId,
      userId,
      type: request.type,
      request,
      callbackData: request.biz_opaque_callback_data ?? null,
      at,
    };
    sends.push(send);
    for (const w of sendWaiters.splice(0)) w();

    // A reaction is a service (free-form) message: only a template goes outside the window.
    const freeForm = request.type !== 'template';
    const windowOpen = (lastInbound.get(addressee) ?? -Infinity) + CUSTOMER_SERVICE_WINDOW_MS > at;
    const undeliverableReaction = request.type === 'reaction' ? reactionDeliveryProblem(inboundMessages.get(request.reaction.message_id), addressee, at) : null;
    if (fault?.type === 'failedStatus') {
      const { code, title, details } = fault;
      later(20, () => autoPost(send, 'failed', { code, title, ...(details ? { details } : {}) }));
    } else if (fault?.type === 'reengagement' || (enforceWindow && freeForm && !windowOpen)) {
      later(20, () => autoPost(send, 'failed', { code: 131047, title: 'Re-engagement message', details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' }));
    } else if (undeliverableReaction) {
      later(20, () => autoPost(send, 'failed', { code: 131009, title: 'Parameter value is not valid', details: undeliverableReaction }));
    } else if (opts.autoStatuses) {
      const auto = opts.autoStatuses;
      // Meta reports only `sent` for a reaction.
      const statuses = request.type === 'reaction' ? auto.statuses.filter((s) => s === 'sent') : auto.statuses;
      statuses.forEach((s, i) => later(auto.afterMs * (i + 1), () => autoPost(send, s)));
    }

    if (fault?.type === 'dropAfterAccept') {
      req.socket.destroy();
      return;
    }
    if (hold) {
      held.push(res);
      return;
    }
    sendJson(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [waId !== null ? { input: request.to, wa_id: waId } : { input: userId, user_id: userId }],
      messages: [{ id: wamid, ...(request.type === 'template' ? { message_status: 'accepted' } : {}) }],
    });
  }

  function checkContent(request: SendMessageRequest, toBsuid: boolean): { code: number; message: string; details: string } | null {
    if (request.type === 'template') {
      const t = templates.find((x) => x.name === request.template.name && x.language === request.template.language.code);
      if (!t || t.status !== 'APPROVED') {
        return { code: 132001, message: '(#132001) Template name does not exist in the translation', details: 'template name not found in this language' };
      }
      // Meta: one-tap, zero-tap and copy-code authentication templates still need a phone number.
      if (toBsuid && t.category === 'AUTHENTICATION') {
        return {
          code: 131062,
          message: '(#131062) Business-scoped User ID recipients are not supported for this message',
          details: 'Authentication templates cannot be sent to a business-scoped user id; use a phone number.',
        };
      }
      const expected = new Set(t.components.find((c) => c.type === 'BODY')?.text?.match(/\{\{\s*\w+\s*\}\}/g) ?? []).size;
      const given = request.template.components?.find((c) => c.type === 'body')?.parameters.length ?? 0;
      if (expected !== given) {
        return { code: 132000, message: '(#132000) Number of parameters does not match the expected number of params', details: `body: number of localizable_params (${given}) does not match the expected number of params (${expected})` };
      }
    }
    const mediaRef =
      request.type === 'image' ? request.image.id
      : request.type === 'video' ? request.video.id
      : request.type === 'document' ? request.document.id
      : request.type === 'audio' ? request.audio.id
      : request.type === 'sticker' ? request.sticker.id
      : null;
    if (mediaRef !== null && !media.has(mediaRef)) {
      return { code: 100, message: '(#100) Invalid parameter', details: 'Invalid media id' };
    }
    return null;
  }

  async function onUpload(req: IncomingMessage, res: ServerResponse, phoneNumberId: string): Promise<void> {
    const raw = await readBody(req, UPLOAD_BODY_LIMIT, opts.uploadBitsPerSecond);
    if (!raw) return graphError(res, 413, 131053, '(#131053) Media upload error', { details: 'File too large' });
    if (!knownPhone(res, phoneNumberId)) return;
    let form: FormData;
    try {
      form = await new Request('http://simulator/', { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body: raw }).formData();
    } catch {
      return graphError(res, 400, 100, '(#100) Invalid parameter', { details: 'Expected multipart/form-data' });
    }
    const file = form.get('file');
    const type = form.get('type');
    if (form.get('messaging_product') !== 'whatsapp') {
      return graphError(res, 400, 100, '(#100) The parameter messaging_product is required.');
    }
    if (!(file instanceof Blob) || typeof type !== 'string') {
      return graphError(res, 400, 100, '(#100) Invalid parameter', { details: 'file and type are required' });
    }
    const kind = mediaKindForMime(type);
    if (!kind) return graphError(res, 400, 131053, '(#131053) Media upload error', { details: `Unsupported file type ${type.slice(0, 80)}` });
    if (file.size > MEDIA_MAX_BYTES[kind]) {
      return graphError(res, 400, 131053, '(#131053) Media upload error', { details: `File size exceeds the ${kind} limit` });
    }
    const bytes = Buffer.from(await file.arrayBuffer());
    const id = graphId();
    media.set(id, { id, bytes, mimeType: type, sha256Hex: createHash('sha256').update(bytes).digest('hex') });
    uploads.push({ id, mimeType: type, size: bytes.length, filename: file instanceof File ? file.name : null });
    sendJson(res, 200, { id });
  }

  function downloadUrl(m: StoredMedia): string {
    const ext = Math.floor((now() + mediaTtl) / 1000);
    const hash = createHmac('sha256', urlKey).update(`${m.id}.${ext}`).digest('base64url');
    return `${baseUrl}/whatsapp_business/attachments/?mid=${m.id}&ext=${ext}&hash=${hash}`;
  }

  function onMediaInfo(res: ServerResponse, id: string): void {
    const m = media.get(id);
    if (!m) {
      return graphError(res, 400, 100, `Unsupported get request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, {
        type: 'GraphMethodException',
        subcode: 33,
      });
    }
    sendJson(res, 200, { messaging_product: 'whatsapp', url: downloadUrl(m), mime_type: m.mimeType, sha256: m.sha256Hex, file_size: m.bytes.length, id: m.id });
  }

  function onDownload(res: ServerResponse, q: URLSearchParams): void {
    const id = q.get('mid') ?? '';
    const ext = Number(q.get('ext'));
    const expected = createHmac('sha256', urlKey).update(`${id}.${ext}`).digest('base64url');
    const m = media.get(id);
    if (!m || q.get('hash') !== expected || !Number.isFinite(ext) || ext * 1000 < now()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('URL signature expired');
      return;
    }
    res.writeHead(200, { 'content-type': m.mimeType, 'content-length': m.bytes.length });
    res.end(m.bytes);
  }

  function onTemplates(res: ServerResponse, wabaId: string, q: URLSearchParams): void {
    if (wabaRefused(res, wabaId)) return;
    const limit = Math.min(Math.max(Number(q.get('limit') ?? pageSize) || pageSize, 1), pageSize);
    const status = q.get('status');
    const list = status ? templates.filter((t) => t.status === status) : templates;
    const afterRaw = q.get('after');
    let start = 0;
    if (afterRaw) {
      const decoded = Number(Buffer.from(afterRaw, 'base64url').toString('utf8'));
      if (!Number.isInteger(decoded) || decoded < 0) return graphError(res, 400, 100, '(#100) Invalid parameter', { details: 'after cursor is invalid' });
      start = decoded + 1;
    }
    const page = list.slice(start, start + limit);
    const cursor = (i: number) => Buffer.from(String(i)).toString('base64url');
    const paging: Record<string, unknown> = {};
    if (page.length > 0) {
      paging.cursors = { before: cursor(start), after: cursor(start + page.length - 1) };
      if (start + page.length < list.length) {
        // As Meta does: the next link carries the access token in its query string.
        const next = new URLSearchParams(q);
        next.set('access_token', token);
        next.set('limit', String(limit));
        next.set('after', cursor(start + page.length - 1));
        paging.next = `${baseUrl}/v23.0/${wabaId}/message_templates?${next}`;
      }
    }
    sendJson(res, 200, {
      data: page.map((t) => ({ name: t.name, components: t.components, language: t.language, status: t.status, category: t.category, id: t.id })),
      paging,
    });
  }

  function envelope(value: Record<string, unknown>): string {
    return metaJson({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: opts.wabaId,
          changes: [
            {
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: opts.displayPhoneNumber ?? '15550001234', phone_number_id: opts.phoneNumberId },
                ...value,
              },
              field: 'messages',
            },
          ],
        },
      ],
    });
  }

  async function deliver(body: string): Promise<number> {
    if (!opts.webhookUrl || !opts.appSecret) throw new Error('the simulator needs webhookUrl and appSecret to post webhooks');
    const signature = signWebhook(opts.appSecret, body);
    const record: WebhookDelivery = { body, signature, status: 0, attempts: 0 };
    webhooks.push(record);
    // Meta retries failed deliveries with backoff; a few quick retries keep the demo honest.
    for (let attempt = 0; attempt < 4; attempt++) {
      record.attempts += 1;
      try {
        const res = await fetch(opts.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        record.status = res.status;
        await res.arrayBuffer();
        if (res.ok) return res.status;
      } catch {
        record.status = 0;
      }
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
    return record.status;
  }

  function postStatusFor(send: RecordedSend, status: SimStatus, error?: { code: number; title: string; details?: string }): Promise<number> {
    const ts = String(Math.floor(now() / 1000));
    // Meta's shape since BSUIDs: a send by BSUID reports `recipient_user_id` and no phone number.
    const s: Record<string, unknown> = { id: send.wamid, status, timestamp: ts };
    if (send.waId !== null) s.recipient_id = send.waId;
    else s.recipient_user_id = send.userId;
    if (send.callbackData) s.biz_opaque_callback_data = send.callbackData;
    if (status === 'sent') {
      s.conversation = { id: randomBytes(16).toString('hex'), expiration_timestamp: String(Math.floor(now() / 1000) + 86_400), origin: { type: send.type === 'template' ? 'utility' : 'service' } };
      s.pricing = { billable: send.type === 'template', pricing_model: 'PMP', type: send.type === 'template' ? 'regular' : 'free_customer_service', category: send.type === 'template' ? 'utility' : 'service' };
    }
    if (status === 'failed' && error) {
      s.errors = [{ code: error.code, title: error.title, message: error.title, error_data: { details: error.details ?? error.title }, href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/' }];
    }
    return deliver(envelope({ statuses: [s] }));
  }

  /** Statuses the simulator posts by itself: skipped without a webhook target, never thrown. */
  function autoPost(send: RecordedSend, status: SimStatus, error?: { code: number; title: string; details?: string }): void {
    if (!opts.webhookUrl || !opts.appSecret) return;
    postStatusFor(send, status, error).catch((err: unknown) => log?.warn({ err: err instanceof Error ? err.message : 'unknown' }, 'status webhook failed'));
  }

  const InboundFromSchema = z.string().regex(/^\d{6,20}$/);
  const InboundSenderSchema = z
    .object({ from: InboundFromSchema.optional(), userId: BsuidSchema.optional(), username: z.string().min(1).max(64).optional() })
    .refine((p) => p.from !== undefined || p.userId !== undefined, 'a patient needs a phone number or a BSUID');

  return {
    async listen(port = 0) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return baseUrl;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const res of held.splice(0)) res.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    get url() {
      return baseUrl;
    },
    sends,
    reads,
    uploads,
    webhooks,
    hits,
    inject(route, fault, times = 1, skip = 0) {
      const list = faults.get(route) ?? [];
      for (let i = 0; i < skip; i++) list.push(null);
      for (let i = 0; i < times; i++) list.push(fault);
      faults.set(route, list);
    },
    addForeignWaba(wabaId) {
      foreignWabas.add(wabaId);
    },
    rotateToken(newToken) {
      retiredTokens.add(token);
      token = newToken ?? `retired-${randomBytes(8).toString('hex')}`;
    },
    holdResponses(on) {
      hold = on;
    },
    noteInbound(id, at = now(), wamid) {
      lastInbound.set(id, Math.max(at, lastInbound.get(id) ?? 0));
      if (wamid) inboundMessages.set(wamid, { from: id, at });
    },
    addMedia(p) {
      const id = graphId();
      media.set(id, { id, bytes: p.bytes, mimeType: p.mimeType, sha256Hex: p.sha256Hex ?? createHash('sha256').update(p.bytes).digest('hex') });
      return id;
    },
    setTemplates(list) {
      templates = list.map((t) => ({ ...t, id: t.id ?? graphId() }));
    },
    postStatus(wamid, status, error) {
      const send = sends.find((s) => s.wamid === wamid);
      if (!send) throw new Error('postStatus: the simulator never accepted that message');
      return postStatusFor(send, status, error);
    },
    async postInbound(p) {
      const who = InboundSenderSchema.parse({ from: p.from, userId: p.userId, username: p.username });
      const at = p.at ?? now();
      const wamid = makeWamid((who.from ?? who.userId)!);
      const message: Record<string, unknown> = {
        ...(who.from ? { from: who.from } : {}),
        ...(who.userId ? { from_user_id: who.userId } : {}),
        id: wamid,
        timestamp: String(Math.floor(at / 1000)),
      };
      if ('text' in p) {
        if (p.replyToWamid) message.context = { from: opts.displayPhoneNumber ?? '15550001234', id: p.replyToWamid };
        message.type = 'text';
        message.text = { body: p.text };
      } else {
        const m = media.get(p.media.mediaId);
        if (!m) throw new Error('postInbound: unknown media id; addMedia first');
        message.type = p.media.kind;
        message[p.media.kind] = {
          ...(p.media.caption ? { caption: p.media.caption } : {}),
          ...(p.media.filename ? { filename: p.media.filename } : {}),
          mime_type: m.mimeType,
          sha256: Buffer.from(m.sha256Hex, 'hex').toString('base64'),
          id: m.id,
          url: downloadUrl(m),
        };
      }
      for (const id of [who.from, who.userId]) if (id) lastInbound.set(id, Math.max(at, lastInbound.get(id) ?? 0));
      inboundMessages.set(wamid, { from: (who.from ?? who.userId)!, at });
      const contact = {
        profile: { name: p.name, ...(who.username ? { username: who.username } : {}) },
        ...(who.from ? { wa_id: who.from } : {}),
        ...(who.userId ? { user_id: who.userId } : {}),
      };
      const status = await deliver(envelope({ contacts: [contact], messages: [message] }));
      return { wamid, status };
    },
    async postSystem(p) {
      const who = InboundSenderSchema.parse({ from: p.from, userId: p.userId });
      const at = p.at ?? now();
      const wamid = makeWamid((who.from ?? who.userId)!);
      const message = {
        ...(who.from ? { from: who.from } : {}),
        ...(who.userId ? { from_user_id: who.userId } : {}),
        id: wamid,
        timestamp: String(Math.floor(at / 1000)),
        type: 'system',
        system: { body: p.system.body ?? 'User changed', ...p.system },
      };
      for (const key of ['wa_id', 'user_id'] as const) {
        const id = p.system[key];
        if (typeof id === 'string') lastInbound.set(id, Math.max(at, lastInbound.get(id) ?? 0));
      }
      const status = await deliver(envelope({ messages: [message] }));
      return { wamid, status };
    },
    waitForSends(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`expected ${count} sends, saw ${sends.length}`)), timeoutMs);
        const check = () => {
          if (sends.length >= count) {
            clearTimeout(deadline);
            resolve();
          } else sendWaiters.push(check);
        };
        check();
      });
    },
  };
}
