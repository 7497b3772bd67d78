import { CodedError, type ErrorCode } from '../../../shared/errors';
import { GraphErrorBodySchema, type GraphErrorBody } from './schemas';

/**
 * What the caller should do about a failed Graph API call. The decision is made here, once, from
 * Meta's error code (never its wording), so the outbox and the media pipeline only ever branch on
 * these three outcomes.
 * - `retryable`: throttled, Meta briefly unavailable, or the network failed. Try again later.
 * - `token_expired`: the access token is invalid or expired (190). Nothing will work until an
 *   admin gives a new one, so sending pauses instead of burning retries.
 * - `permanent`: Meta refused this request (bad parameter, outside the 24-hour window, blocked
 *   recipient…). Sending it again would fail again; the message is marked failed with the reason.
 */
export type GraphFailureKind = 'retryable' | 'token_expired' | 'permanent';

/** Meta codes that mean "slow down" (Graph API and WhatsApp throughput limits). */
const RATE_LIMIT_CODES = new Set([4, 17, 32, 613, 80007, 130429, 131056]);
/** Meta codes that mean "our side is having trouble, try again". */
const TRANSIENT_CODES = new Set([1, 2, 131000, 131016, 133004]);
const TOKEN_CODES = new Set([190]);

export const META_CODE = {
  tokenInvalid: 190,
  invalidParameter: 100,
  rateLimit: 130429,
  pairRateLimit: 131056,
  reengagement: 131047,
  /** The message kind cannot go to a business-scoped user id (e.g. authentication templates). Permanent. */
  bsuidUnsupported: 131062,
} as const;

export class GraphError extends CodedError {
  constructor(
    readonly kind: GraphFailureKind,
    code: ErrorCode,
    message: string,
    /** Meta's numeric error code, null for HTTP or network failures without a Graph error body. */
    readonly metaCode: number | null,
    /** A short reason a receptionist can read: Meta's title for the code, never request content. */
    readonly title: string,
    readonly httpStatus: number | null,
    readonly fbtraceId: string | null = null,
    /**
     * The request may have reached Meta and been acted on although no answer came back (timeout,
     * connection reset after sending). Resending could message the patient twice.
     */
    readonly maybeDelivered = false,
  ) {
    super(code, message);
    this.name = 'GraphError';
  }

  /** Meta's `error_subcode` (463: the token expired, 33: no such object for this token), when given. */
  metaSubcode: number | null = null;
}

/**
 * Meta's message is "(#131047) Re-engagement message": a fixed title per code. Digit runs are cut
 * anyway, so a phone number could never pass from an error into a log or the UI.
 */
function titleOf(message: string | undefined, code: number): string {
  const bare = (message ?? '').replace(/^\(#\d+\)\s*/, '').replace(/\+?\d[\d\s-]{5,}\d/g, '…').trim();
  return (bare || `Meta error ${code}`).slice(0, 200);
}

/** Failures that happen before a request can have left this machine: resending is always safe. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_CONNECT_TIMEOUT']);

function causeCode(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

export function networkError(cause: unknown): GraphError {
  const timedOut = cause instanceof Error && cause.name === 'TimeoutError';
  const code = causeCode(cause);
  const what = timedOut ? 'timed out' : 'could not be reached';
  const maybeDelivered = timedOut || code === null || !NEVER_SENT.has(code);
  return new GraphError('retryable', 'UNAVAILABLE', `The WhatsApp Graph API ${what}; will retry`, null, `Graph API ${what}${code ? ` (${code})` : ''}`, null, null, maybeDelivered);
}

/** Classify a non-2xx response from its status and (possibly absent or garbled) body. */
export function graphErrorFromResponse(status: number, bodyText: string): GraphError {
  let json: unknown = null;
  try {
    json = JSON.parse(bodyText);
  } catch {
    // Proxies and load balancers answer with HTML; the status alone decides then.
  }
  const parsed = GraphErrorBodySchema.safeParse(json);
  if (parsed.success) {
    const err = fromGraphBody(status, parsed.data.error);
    err.metaSubcode = parsed.data.error.error_subcode ?? null;
    return err;
  }
  return fromStatus(status);
}

function fromGraphBody(status: number, e: GraphErrorBody['error']): GraphError {
  const title = titleOf(e.message, e.code);
  const trace = e.fbtrace_id ?? null;
  if (TOKEN_CODES.has(e.code)) {
    return new GraphError('token_expired', 'WHATSAPP_TOKEN_EXPIRED', 'The WhatsApp access token is invalid or expired; an admin must enter a new one', e.code, title, status, trace);
  }
  if (RATE_LIMIT_CODES.has(e.code)) {
    return new GraphError('retryable', 'RATE_LIMITED', `WhatsApp is throttling sends (Meta code ${e.code}); will retry`, e.code, title, status, trace);
  }
  if (TRANSIENT_CODES.has(e.code) || status >= 500) {
    return new GraphError('retryable', 'UNAVAILABLE', `WhatsApp is temporarily unavailable (Meta code ${e.code}); will retry`, e.code, title, status, trace);
  }
  return new GraphError('permanent', 'WHATSAPP_REJECTED', `WhatsApp refused the request (Meta code ${e.code}: ${title})`, e.code, title, status, trace);
}

function fromStatus(status: number): GraphError {
  if (status === 401) {
    return new GraphError('token_expired', 'WHATSAPP_TOKEN_EXPIRED', 'The WhatsApp access token was refused; an admin must enter a new one', null, 'Access token refused', status);
  }
  if (status === 429 || status === 408 || status >= 500) {
    return new GraphError('retryable', status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE', `The WhatsApp Graph API answered HTTP ${status}; will retry`, null, `HTTP ${status}`, status);
  }
  return new GraphError('permanent', 'WHATSAPP_REJECTED', `The WhatsApp Graph API answered HTTP ${status}`, null, `HTTP ${status}`, status);
}

/** A 2xx response whose body is not what Meta documents: not retried, since it would parse no better. */
export function unexpectedResponse(what: string, status: number): GraphError {
  const accepted = status >= 200 && status < 300;
  return new GraphError('permanent', 'WHATSAPP_REJECTED', `The WhatsApp Graph API returned an unexpected ${what} response`, null, 'Unexpected response', status, null, accepted);
}

/** Inbound media larger than Meta's limit for its type, or than the caller's cap. Never retried. */
export class MediaTooLargeError extends CodedError {
  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super('VALIDATION_FAILED', `The media file is ${size} bytes, over the ${maxBytes}-byte limit for its type`);
    this.name = 'MediaTooLargeError';
  }
}
