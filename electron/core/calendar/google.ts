import { calendar, type calendar_v3 } from '@googleapis/calendar';
import { CodeChallengeMethod, OAuth2Client } from 'google-auth-library';
import { CodedError } from '../../../shared/errors';
import type { Interval } from './slots';

/** Where Google is: Google itself by default, the simulator in tests, the benchmark and the demo. */
export interface GoogleEndpoints {
  authorizeUrl: string;
  tokenUrl: string;
  revokeUrl: string;
  /** The Calendar API's root (`https://www.googleapis.com/`). */
  apiRootUrl: string;
}

export const GOOGLE_ENDPOINTS: GoogleEndpoints = {
  authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  revokeUrl: 'https://oauth2.googleapis.com/revoke',
  apiRootUrl: 'https://www.googleapis.com/',
};

/** Only Google over HTTPS, or a simulator on this computer. */
export function assertAllowedEndpoints(e: GoogleEndpoints): void {
  for (const url of Object.values(e)) {
    if (!/^https:\/\/[a-z0-9.-]+\.(google\.com|googleapis\.com)(\/|$)/.test(url) && !/^http:\/\/127\.0\.0\.1:\d+(\/|$)/.test(url)) {
      throw new CodedError('VALIDATION_FAILED', 'Google endpoints must be Google over https, or a simulator on 127.0.0.1.');
    }
  }
}

export interface OAuthClientConfig {
  endpoints: GoogleEndpoints;
  clientId: string;
  clientSecret?: string | undefined;
}

/** Google answered that the grant is gone (revoked by the user or Google, or expired): reconnect. */
export class GrantRevokedError extends CodedError {
  constructor() {
    super('CALENDAR_RECONNECT_NEEDED', 'Google no longer accepts this connection (it was revoked or expired). An admin must connect Google Calendar again.');
  }
}

export function oauthClient(config: OAuthClientConfig, redirectUri?: string): OAuth2Client {
  return new OAuth2Client({
    clientId: config.clientId,
    ...(config.clientSecret ? { clientSecret: config.clientSecret } : {}),
    ...(redirectUri ? { redirectUri } : {}),
    endpoints: { oauth2AuthBaseUrl: config.endpoints.authorizeUrl, oauth2TokenUrl: config.endpoints.tokenUrl, oauth2RevokeUrl: config.endpoints.revokeUrl },
  });
}

export async function authorizeRequest(client: OAuth2Client, scopes: readonly string[], state: string): Promise<{ url: string; codeVerifier: string }> {
  const { codeVerifier, codeChallenge } = await client.generateCodeVerifierAsync();
  const url = client.generateAuthUrl({
    access_type: 'offline',
    // A fresh consent: Google hands out a refresh token only on a consent, and the admin sees the scopes.
    prompt: 'consent',
    scope: [...scopes],
    code_challenge_method: CodeChallengeMethod.S256,
    code_challenge: codeChallenge!,
    state,
  });
  return { url, codeVerifier };
}

interface ErrorLike {
  status?: number;
  response?: { status?: number; data?: unknown };
  message?: string;
}

const statusOf = (err: unknown): number | undefined => (err as ErrorLike)?.response?.status ?? (err as ErrorLike)?.status;
function oauthErrorOf(err: unknown): string | undefined {
  const data = (err as ErrorLike)?.response?.data as { error?: unknown } | undefined;
  return typeof data?.error === 'string' ? data.error : undefined;
}

/** Google's errors as the desk's codes; the message never quotes Google's body (it may echo a request). */
export function translateGoogleError(err: unknown): CodedError {
  if (err instanceof CodedError) return err;
  const status = statusOf(err);
  if (oauthErrorOf(err) === 'invalid_grant' || /invalid_grant/.test((err as ErrorLike)?.message ?? '')) return new GrantRevokedError();
  if (status === 401) return new GrantRevokedError();
  if (status === 403) return new CodedError('FORBIDDEN', 'Google refused: the connected account may not change this calendar (it must own it), or a scope is missing. Connect again as the calendar’s owner.');
  if (status === 404) return new CodedError('NOT_FOUND', 'Google does not know this calendar or event for the connected account.');
  if (status === 409) return new CodedError('CONFLICT', 'Google already has this booking.');
  if (status !== undefined && status >= 500) return new CodedError('UNAVAILABLE', `Google Calendar is not answering right now (HTTP ${status}). Try again in a moment.`);
  return new CodedError('UNAVAILABLE', 'Google Calendar could not be reached. Check the internet connection and try again.');
}

export interface EventFields {
  id?: string;
  summary: string;
  description: string;
  start: number;
  end: number;
  timeZone: string;
}

/** The Calendar API calls the booking service makes, on one refresh token. */
export interface CalendarApi {
  freeBusy(calendarIds: readonly string[], from: number, to: number): Promise<Map<string, Interval[] | 'notFound'>>;
  insertEvent(calendarId: string, fields: EventFields): Promise<{ id: string }>;
  patchEvent(calendarId: string, eventId: string, fields: Partial<EventFields>): Promise<void>;
  deleteEvent(calendarId: string, eventId: string): Promise<void>;
}

export function calendarApi(config: OAuthClientConfig, refreshToken: string): CalendarApi {
  const auth = oauthClient(config);
  auth.setCredentials({ refresh_token: refreshToken });
  // googleapis-common ships its own copy of google-auth-library; the client is the same at run time.
  const api: calendar_v3.Calendar = calendar({ version: 'v3', auth: auth as never, rootUrl: config.endpoints.apiRootUrl, timeout: 15_000, retry: false });
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (statusOf(err) !== 401 || oauthErrorOf(err)) throw translateGoogleError(err);
      // An access token Google no longer takes: drop it and refresh once; a refused refresh is a revoked grant.
      auth.setCredentials({ refresh_token: refreshToken });
      try {
        return await op();
      } catch (again) {
        throw translateGoogleError(again);
      }
    }
  };
  const when = (ms: number, timeZone: string) => ({ dateTime: new Date(ms).toISOString(), timeZone });
  return {
    freeBusy: (calendarIds, from, to) =>
      guard(async () => {
        const res = await api.freebusy.query({ requestBody: { timeMin: new Date(from).toISOString(), timeMax: new Date(to).toISOString(), items: calendarIds.map((id) => ({ id })) } });
        const out = new Map<string, Interval[] | 'notFound'>();
        for (const id of calendarIds) {
          const c = res.data.calendars?.[id];
          if (!c || (c.errors && c.errors.length > 0)) out.set(id, 'notFound');
          else out.set(id, (c.busy ?? []).map((b) => ({ start: Date.parse(b.start ?? ''), end: Date.parse(b.end ?? '') })).filter((b) => Number.isFinite(b.start) && Number.isFinite(b.end)));
        }
        return out;
      }),
    insertEvent: (calendarId, f) =>
      guard(async () => {
        const res = await api.events.insert({
          calendarId,
          sendUpdates: 'none',
          requestBody: { ...(f.id ? { id: f.id } : {}), summary: f.summary, description: f.description, start: when(f.start, f.timeZone), end: when(f.end, f.timeZone), transparency: 'opaque' },
        });
        return { id: res.data.id ?? f.id ?? '' };
      }),
    patchEvent: (calendarId, eventId, f) =>
      guard(async () => {
        const tz = f.timeZone ?? 'UTC';
        await api.events.patch({
          calendarId,
          eventId,
          sendUpdates: 'none',
          requestBody: {
            ...(f.summary !== undefined ? { summary: f.summary } : {}),
            ...(f.description !== undefined ? { description: f.description } : {}),
            ...(f.start !== undefined ? { start: when(f.start, tz) } : {}),
            ...(f.end !== undefined ? { end: when(f.end, tz) } : {}),
          },
        });
      }),
    deleteEvent: (calendarId, eventId) =>
      guard(async () => {
        try {
          await api.events.delete({ calendarId, eventId, sendUpdates: 'none' });
        } catch (err) {
          // Already gone at Google (deleted there, or by an earlier try): the cancellation stands.
          if (statusOf(err) === 410 || statusOf(err) === 404) return;
          throw err;
        }
      }),
  };
}

/** Revokes at Google's revocation endpoint; a token Google already forgot counts as revoked. */
export async function revokeAtGoogle(config: OAuthClientConfig, token: string): Promise<void> {
  try {
    await oauthClient(config).revokeToken(token);
  } catch (err) {
    if (statusOf(err) === 400) return;
    throw translateGoogleError(err);
  }
}
