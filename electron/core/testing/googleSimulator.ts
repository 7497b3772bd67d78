import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A stand-in for Google's OAuth 2.0 server and the Calendar API on 127.0.0.1, for tests, the
 * benchmark and the demo. It speaks Google's shapes: the consent page at `/o/oauth2/v2/auth`
 * (installed-app flow: loopback redirect, PKCE S256 required, scopes checked against a list), the
 * token endpoint (authorization_code with `code_verifier`, refresh_token; `invalid_grant` once a
 * grant is revoked), `/revoke`, `calendar/v3/freeBusy` and events insert/get/patch/delete under
 * `calendar/v3/calendars/{id}/events`, with Google's error bodies. Faults: an expired access token,
 * a grant revoked at Google, 409 on an insert, a 5xx.
 */

export const SIM_CLIENT_ID = 'clinic-inbox-sim.apps.googleusercontent.com';
export const SIM_CLIENT_SECRET = 'GOCSPX-simulator';

export type GoogleFault =
  /** The next Calendar call's access token counts as expired (401); a refresh fixes it. */
  | { type: 'expiredToken' }
  /** The next events insert answers 409 "The requested identifier already exists." */
  | { type: 'conflict' }
  /** The next Calendar call answers this 5xx with Google's `backendError` body. */
  | { type: 'status'; status: number };

interface Grant {
  refreshToken: string;
  accessTokens: Set<string>;
  scopes: string[];
  clientId: string;
  revoked: boolean;
}

interface PendingAuth {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  challenge: string;
  state: string | null;
}

export interface SimEvent {
  id: string;
  calendarId: string;
  summary: string;
  description: string;
  start: string;
  end: string;
  status: 'confirmed' | 'cancelled';
  created: string;
  updated: string;
  sequence: number;
}

export interface TokenExchange {
  grantType: string;
  /** The code_verifier hashed to the challenge the authorize request carried. */
  pkceVerified: boolean;
  ok: boolean;
}

export interface GoogleSimulator {
  /** `authorize`, `token`, `revoke` and the API root, as the core's `google` option takes them. */
  endpoints(): { authorizeUrl: string; tokenUrl: string; revokeUrl: string; apiRootUrl: string };
  readonly baseUrl: string;
  /** The scopes a consent may grant (Google's full Calendar list); anything else is `invalid_scope`. */
  knownScopes: Set<string>;
  /** Calendars the signed-in Google account owns (`events.owned` may write only these). */
  ownCalendar(id: string): void;
  /** A busy period made outside the app (another receptionist, the practitioner's own calendar). */
  addBusy(calendarId: string, start: number, end: number): SimEvent;
  events(calendarId?: string): SimEvent[];
  fault(f: GoogleFault): void;
  /** Google revokes the grant (the user removed the app at myaccount.google.com, or it expired). */
  revokeAllGrants(): void;
  /** What a person clicking "Allow" does: answers the redirect address the browser would go to. */
  consent(authorizeUrl: string): Promise<string>;
  readonly tokenExchanges: TokenExchange[];
  /** Tokens posted to `/revoke`. */
  readonly revocations: string[];
  /** Scopes of the grants issued, newest last. */
  readonly grantedScopes: string[][];
  /** Calendar API calls, newest last (`POST freeBusy`, `POST events`, …), with the simulator's own time handling each. */
  readonly apiCalls: { method: string; route: string; status: number; ms: number }[];
  /** Token endpoint calls with the simulator's own time (the benchmark subtracts it). */
  readonly tokenCalls: { ms: number }[];
  activeGrants(): number;
  close(): Promise<void>;
}

const FULL_CALENDAR_SCOPES = [
  'https://www.googleapis.com/auth/calendar',
  'https://www.googleapis.com/auth/calendar.readonly',
  'https://www.googleapis.com/auth/calendar.freebusy',
  'https://www.googleapis.com/auth/calendar.events',
  'https://www.googleapis.com/auth/calendar.events.readonly',
  'https://www.googleapis.com/auth/calendar.events.owned',
  'https://www.googleapis.com/auth/calendar.events.owned.readonly',
  'https://www.googleapis.com/auth/calendar.calendarlist.readonly',
];
const FREEBUSY_OK = ['calendar', 'calendar.readonly', 'calendar.freebusy', 'calendar.events', 'calendar.events.readonly'];
const WRITE_OK = ['calendar', 'calendar.events', 'calendar.events.owned'];
const has = (scopes: string[], short: string[]): boolean => scopes.some((s) => short.some((x) => s === `https://www.googleapis.com/auth/${x}`));

const iso = (ms: number): string => new Date(ms).toISOString();
const b64url = (buf: Buffer): string => buf.toString('base64url');

function googleError(res: ServerResponse, status: number, message: string, reason: string, statusName: string): void {
  send(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }], status: statusName } });
}
function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts (simulator)</title></head><body>${body}</body></html>`);
}
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readBody(req: IncomingMessage, limit = 1_000_000): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isLoopbackRedirect(uri: string): boolean {
  return /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?(\/|$)/.test(uri);
}

export async function startGoogleSimulator(options: { clientId?: string; clientSecret?: string } = {}): Promise<GoogleSimulator> {
  const clientId = options.clientId ?? SIM_CLIENT_ID;
  const clientSecret = options.clientSecret ?? SIM_CLIENT_SECRET;
  const pending = new Map<string, PendingAuth>();
  const codes = new Map<string, PendingAuth & { used: boolean }>();
  const grants: Grant[] = [];
  const owned = new Set<string>(['primary']);
  const store = new Map<string, SimEvent[]>();
  const faults: GoogleFault[] = [];
  const tokenExchanges: TokenExchange[] = [];
  const revocations: string[] = [];
  const grantedScopes: string[][] = [];
  const apiCalls: { method: string; route: string; status: number; ms: number }[] = [];
  const tokenCalls: { ms: number }[] = [];
  const knownScopes = new Set(FULL_CALENDAR_SCOPES);
  let expireNext = false;

  const calendarEvents = (id: string): SimEvent[] => {
    let list = store.get(id);
    if (!list) store.set(id, (list = []));
    return list;
  };
  const eventResource = (e: SimEvent) => ({
    kind: 'calendar#event',
    etag: `"${createHash('sha1').update(`${e.id}:${e.sequence}:${e.updated}`).digest('hex').slice(0, 16)}"`,
    id: e.id,
    status: e.status,
    htmlLink: `https://www.google.com/calendar/event?eid=${b64url(Buffer.from(`${e.id} ${e.calendarId}`))}`,
    created: e.created,
    updated: e.updated,
    summary: e.summary,
    description: e.description,
    creator: { email: 'clinic@example.org', self: true },
    organizer: { email: e.calendarId === 'primary' ? 'clinic@example.org' : e.calendarId, self: true },
    start: { dateTime: e.start, timeZone: 'UTC' },
    end: { dateTime: e.end, timeZone: 'UTC' },
    iCalUID: `${e.id}@google.com`,
    sequence: e.sequence,
    reminders: { useDefault: true },
    eventType: 'default',
  });

  function grantOfAccess(req: IncomingMessage): Grant | 'expired' | null {
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(auth)?.[1];
    if (!token) return null;
    const grant = grants.find((g) => g.accessTokens.has(token));
    if (!grant || grant.revoked) return null;
    if (expireNext) {
      expireNext = false;
      grant.accessTokens.delete(token);
      return 'expired';
    }
    return grant;
  }

  function issueAccess(grant: Grant): string {
    const token = `ya29.${b64url(randomBytes(24))}`;
    grant.accessTokens.add(token);
    return token;
  }

  async function authorize(url: URL, res: ServerResponse): Promise<void> {
    const q = url.searchParams;
    const fail = (error: string, detail: string) => html(res, 400, `<h1>Error 400: ${escapeHtml(error)}</h1><p>${escapeHtml(detail)}</p>`);
    if (q.get('client_id') !== clientId) return fail('invalid_client', 'The OAuth client was not found.');
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!isLoopbackRedirect(redirectUri)) return fail('redirect_uri_mismatch', 'Desktop clients must redirect to a loopback address.');
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code.');
    const challenge = q.get('code_challenge') ?? '';
    if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) return fail('invalid_request', 'PKCE with code_challenge_method=S256 is required.');
    const scopes = (q.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (scopes.length === 0 || scopes.some((s) => !knownScopes.has(s))) return fail('invalid_scope', 'Some requested scopes are not valid.');
    const id = b64url(randomBytes(12));
    pending.set(id, { clientId, redirectUri, scopes, challenge, state: q.get('state') });
    const list = scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('');
    html(
      res,
      200,
      `<h1>Clinic Inbox wants access to your Google Account</h1><ul aria-label="Requested access">${list}</ul>` +
        `<form method="post" action="/o/oauth2/v2/auth/approve"><input type="hidden" name="request" value="${id}">` +
        `<button type="submit" name="decision" value="allow">Allow</button> <button type="submit" name="decision" value="deny">Cancel</button></form>`,
    );
  }

  function approve(form: URLSearchParams, res: ServerResponse): void {
    const p = pending.get(form.get('request') ?? '');
    if (!p) return html(res, 400, '<h1>Error 400: invalid_request</h1>');
    pending.delete(form.get('request')!);
    const target = new URL(p.redirectUri);
    if (p.state !== null) target.searchParams.set('state', p.state);
    if (form.get('decision') !== 'allow') {
      target.searchParams.set('error', 'access_denied');
    } else {
      const code = `4/${b64url(randomBytes(24))}`;
      codes.set(code, { ...p, used: false });
      target.searchParams.set('code', code);
      target.searchParams.set('scope', p.scopes.join(' '));
    }
    res.writeHead(302, { location: target.toString() });
    res.end();
  }

  function token(form: URLSearchParams, res: ServerResponse): void {
    const grantType = form.get('grant_type') ?? '';
    const oauthError = (error: string, description: string, pkceVerified = false) => {
      tokenExchanges.push({ grantType, pkceVerified, ok: false });
      send(res, error === 'invalid_client' ? 401 : 400, { error, error_description: description });
    };
    if (form.get('client_id') !== clientId || (form.has('client_secret') && form.get('client_secret') !== clientSecret)) return oauthError('invalid_client', 'The OAuth client was not found.');
    if (grantType === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '');
      if (!code || code.used) return oauthError('invalid_grant', 'Malformed auth code.');
      code.used = true;
      if (form.get('redirect_uri') !== code.redirectUri) return oauthError('redirect_uri_mismatch', 'Bad Request');
      const verifier = form.get('code_verifier') ?? '';
      const verified = /^[A-Za-z0-9._~-]{43,128}$/.test(verifier) && b64url(createHash('sha256').update(verifier).digest()) === code.challenge;
      if (!verified) return oauthError('invalid_grant', 'Missing code verifier.');
      const grant: Grant = { refreshToken: `1//${b64url(randomBytes(32))}`, accessTokens: new Set(), scopes: code.scopes, clientId, revoked: false };
      grants.push(grant);
      grantedScopes.push(code.scopes);
      tokenExchanges.push({ grantType, pkceVerified: true, ok: true });
      return send(res, 200, {
        access_token: issueAccess(grant),
        expires_in: 3599,
        refresh_token: grant.refreshToken,
        scope: grant.scopes.join(' '),
        token_type: 'Bearer',
        refresh_token_expires_in: 604799,
      });
    }
    if (grantType === 'refresh_token') {
      const grant = grants.find((g) => g.refreshToken === form.get('refresh_token'));
      if (!grant || grant.revoked) return oauthError('invalid_grant', 'Token has been expired or revoked.');
      tokenExchanges.push({ grantType, pkceVerified: false, ok: true });
      return send(res, 200, { access_token: issueAccess(grant), expires_in: 3599, scope: grant.scopes.join(' '), token_type: 'Bearer' });
    }
    oauthError('unsupported_grant_type', 'Invalid grant_type.');
  }

  function revoke(tokenValue: string, res: ServerResponse): void {
    revocations.push(tokenValue);
    const grant = grants.find((g) => g.refreshToken === tokenValue || g.accessTokens.has(tokenValue));
    if (!grant || grant.revoked) return send(res, 400, { error: 'invalid_token', error_description: 'Token expired or revoked' });
    grant.revoked = true;
    send(res, 200, {});
  }

  function busyOf(calendarId: string, from: number, to: number): { start: string; end: string }[] {
    return calendarEvents(calendarId)
      .filter((e) => e.status === 'confirmed' && Date.parse(e.end) > from && Date.parse(e.start) < to)
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start))
      .map((e) => ({ start: e.start, end: e.end }));
  }

  async function calendarApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const grant = grantOfAccess(req);
    if (grant === null || grant === 'expired') {
      googleError(res, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'authError', 'UNAUTHENTICATED');
      return 401;
    }
    const fault = faults[0];
    if (fault?.type === 'status') {
      faults.shift();
      googleError(res, fault.status, 'Backend Error', 'backendError', 'UNAVAILABLE');
      return fault.status;
    }
    const insufficient = () => {
      googleError(res, 403, 'Request had insufficient authentication scopes.', 'insufficientPermissions', 'PERMISSION_DENIED');
      return 403;
    };
    const raw = req.method === 'GET' || req.method === 'DELETE' ? '' : await readBody(req);
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      googleError(res, 400, 'Parse Error', 'parseError', 'INVALID_ARGUMENT');
      return 400;
    }
    if (path === 'freeBusy' && req.method === 'POST') {
      if (!has(grant.scopes, FREEBUSY_OK)) return insufficient();
      const timeMin = Date.parse(String(body.timeMin));
      const timeMax = Date.parse(String(body.timeMax));
      if (!Number.isFinite(timeMin) || !Number.isFinite(timeMax) || timeMax <= timeMin) {
        googleError(res, 400, 'Bad Request', 'badRequest', 'INVALID_ARGUMENT');
        return 400;
      }
      const items = Array.isArray(body.items) ? (body.items as { id?: string }[]) : [];
      const calendars: Record<string, unknown> = {};
      for (const { id } of items) {
        if (!id) continue;
        calendars[id] = owned.has(id) ? { busy: busyOf(id, timeMin, timeMax) } : { errors: [{ domain: 'global', reason: 'notFound' }], busy: [] };
      }
      send(res, 200, { kind: 'calendar#freeBusy', timeMin: iso(timeMin), timeMax: iso(timeMax), calendars });
      return 200;
    }
    const m = /^calendars\/([^/]+)\/events(?:\/([^/]+))?$/.exec(path);
    if (!m) {
      googleError(res, 404, 'Not Found', 'notFound', 'NOT_FOUND');
      return 404;
    }
    const calendarId = decodeURIComponent(m[1]!);
    const eventId = m[2] ? decodeURIComponent(m[2]) : null;
    if (!has(grant.scopes, WRITE_OK)) return insufficient();
    if (!owned.has(calendarId)) {
      googleError(res, 404, 'Not Found', 'notFound', 'NOT_FOUND');
      return 404;
    }
    const list = calendarEvents(calendarId);
    const stamp = iso(Date.now());
    const dateOf = (v: unknown): string | null => {
      const dt = (v as { dateTime?: string } | undefined)?.dateTime;
      return dt && Number.isFinite(Date.parse(dt)) ? iso(Date.parse(dt)) : null;
    };
    if (!eventId && req.method === 'POST') {
      if (faults[0]?.type === 'conflict') {
        faults.shift();
        googleError(res, 409, 'The requested identifier already exists.', 'duplicate', 'ALREADY_EXISTS');
        return 409;
      }
      const id = typeof body.id === 'string' ? body.id : b64url(randomBytes(10)).toLowerCase().replace(/[^a-v0-9]/g, 'a');
      if (!/^[a-v0-9]{5,1024}$/.test(id)) {
        googleError(res, 400, 'Invalid resource id value.', 'invalid', 'INVALID_ARGUMENT');
        return 400;
      }
      if (list.some((e) => e.id === id)) {
        googleError(res, 409, 'The requested identifier already exists.', 'duplicate', 'ALREADY_EXISTS');
        return 409;
      }
      const start = dateOf(body.start);
      const end = dateOf(body.end);
      if (!start || !end || Date.parse(end) <= Date.parse(start)) {
        googleError(res, 400, 'The specified time range is empty.', 'timeRangeEmpty', 'INVALID_ARGUMENT');
        return 400;
      }
      const e: SimEvent = { id, calendarId, summary: String(body.summary ?? ''), description: String(body.description ?? ''), start, end, status: 'confirmed', created: stamp, updated: stamp, sequence: 0 };
      list.push(e);
      send(res, 200, eventResource(e));
      return 200;
    }
    const e = list.find((x) => x.id === eventId);
    if (!e || (e.status === 'cancelled' && req.method !== 'GET')) {
      googleError(res, e ? 410 : 404, e ? 'Resource has been deleted' : 'Not Found', e ? 'deleted' : 'notFound', e ? 'FAILED_PRECONDITION' : 'NOT_FOUND');
      return e ? 410 : 404;
    }
    if (req.method === 'GET') {
      send(res, 200, eventResource(e));
      return 200;
    }
    if (req.method === 'PATCH') {
      const start = body.start === undefined ? e.start : dateOf(body.start);
      const end = body.end === undefined ? e.end : dateOf(body.end);
      if (!start || !end || Date.parse(end) <= Date.parse(start)) {
        googleError(res, 400, 'The specified time range is empty.', 'timeRangeEmpty', 'INVALID_ARGUMENT');
        return 400;
      }
      Object.assign(e, { start, end, updated: stamp, sequence: e.sequence + 1 });
      if (typeof body.summary === 'string') e.summary = body.summary;
      if (typeof body.description === 'string') e.description = body.description;
      send(res, 200, eventResource(e));
      return 200;
    }
    if (req.method === 'DELETE') {
      Object.assign(e, { status: 'cancelled', updated: stamp });
      res.writeHead(204);
      res.end();
      return 204;
    }
    googleError(res, 405, 'Method Not Allowed', 'methodNotAllowed', 'UNIMPLEMENTED');
    return 405;
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const started = performance.now();
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = url.pathname;
      try {
        if (req.method === 'GET' && path === '/o/oauth2/v2/auth') return await authorize(url, res);
        if (req.method === 'POST' && path === '/o/oauth2/v2/auth/approve') return approve(new URLSearchParams(await readBody(req)), res);
        if (req.method === 'POST' && path === '/token') {
          token(new URLSearchParams(await readBody(req)), res);
          tokenCalls.push({ ms: performance.now() - started });
          return;
        }
        if (req.method === 'POST' && path === '/revoke') {
          const form = new URLSearchParams(await readBody(req));
          return revoke(url.searchParams.get('token') ?? form.get('token') ?? '', res);
        }
        if (path.startsWith('/calendar/v3/')) {
          const route = path.slice('/calendar/v3/'.length);
          const status = await calendarApi(req, res, route);
          apiCalls.push({ method: req.method ?? 'GET', route: route.startsWith('calendars/') ? route.replace(/\/events\/[^/]+$/, '/events/{id}') : route, status, ms: performance.now() - started });
          return;
        }
        googleError(res, 404, 'Not Found', 'notFound', 'NOT_FOUND');
      } catch {
        if (!res.headersSent) googleError(res, 500, 'Internal error', 'internalError', 'INTERNAL');
      }
    })();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    knownScopes,
    endpoints: () => ({ authorizeUrl: `${baseUrl}/o/oauth2/v2/auth`, tokenUrl: `${baseUrl}/token`, revokeUrl: `${baseUrl}/revoke`, apiRootUrl: `${baseUrl}/` }),
    ownCalendar: (id) => void owned.add(id),
    addBusy(calendarId, start, end) {
      const stamp = iso(Date.now());
      const e: SimEvent = { id: `busy${b64url(randomBytes(6)).toLowerCase().replace(/[^a-v0-9]/g, 'a')}`, calendarId, summary: 'Busy', description: '', start: iso(start), end: iso(end), status: 'confirmed', created: stamp, updated: stamp, sequence: 0 };
      calendarEvents(calendarId).push(e);
      return e;
    },
    events: (calendarId) => (calendarId ? [...calendarEvents(calendarId)] : [...store.values()].flat()),
    fault(f) {
      if (f.type === 'expiredToken') expireNext = true;
      else faults.push(f);
    },
    revokeAllGrants: () => grants.forEach((g) => (g.revoked = true)),
    async consent(authorizeUrl) {
      const page = await fetch(authorizeUrl);
      const text = await page.text();
      const request = /name="request" value="([^"]+)"/.exec(text)?.[1];
      if (!page.ok || !request) throw new Error(`the simulator refused the authorize request: ${text.replace(/<[^>]+>/g, ' ').trim()}`);
      const answer = await fetch(`${baseUrl}/o/oauth2/v2/auth/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ request, decision: 'allow' }).toString(),
        redirect: 'manual',
      });
      return answer.headers.get('location') ?? '';
    },
    tokenExchanges,
    revocations,
    grantedScopes,
    apiCalls,
    tokenCalls,
    activeGrants: () => grants.filter((g) => !g.revoked).length,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
