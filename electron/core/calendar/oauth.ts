import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CodedError } from '../../../shared/errors';
import { authorizeRequest, oauthClient, translateGoogleError, type OAuthClientConfig } from './google';

/** How long the loopback listener waits for the admin to finish in the browser. */
export const CONSENT_TIMEOUT_MS = 10 * 60_000;

export interface ConsentResult {
  refreshToken: string;
  accessToken: string | null;
  scopes: string[];
}

export interface PendingConsent {
  authorizeUrl: string;
  /** Settles when Google redirects back (or the admin cancels, or the wait times out). */
  result: Promise<ConsentResult>;
  cancel(): void;
}

const page = (title: string, text: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`;

/**
 * OAuth 2.0 for installed apps (RFC 8252): a one-shot listener on 127.0.0.1 at a free port is the
 * redirect URI, the request carries a PKCE S256 challenge and a random `state`, and the code is
 * exchanged with the verifier. Only the listener's own path with the right `state` is answered.
 */
export async function beginConsent(config: OAuthClientConfig, scopes: readonly string[], timeoutMs = CONSENT_TIMEOUT_MS): Promise<PendingConsent> {
  const state = randomBytes(16).toString('base64url');
  const path = `/oauth2/callback/${randomBytes(8).toString('hex')}`;
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  const client = oauthClient(config, redirectUri);
  const { url, codeVerifier } = await authorizeRequest(client, scopes, state);

  let settle: { resolve(r: ConsentResult): void; reject(e: Error): void } | null = null;
  const result = new Promise<ConsentResult>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const finish = (err: Error | null, value?: ConsentResult) => {
    clearTimeout(timer);
    server.close();
    server.closeAllConnections?.();
    const s = settle;
    settle = null;
    if (!s) return;
    if (err) s.reject(err);
    else s.resolve(value!);
  };
  const timer = setTimeout(() => finish(new CodedError('UNAVAILABLE', 'The Google sign-in was not finished in time. Start connecting again.')), timeoutMs);
  timer.unref();

  server.on('request', (req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (u.pathname !== path || u.searchParams.get('state') !== state) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return;
    }
    const reply = (status: number, title: string, text: string) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page(title, text));
    };
    const code = u.searchParams.get('code');
    if (!code) {
      reply(400, 'Google Calendar was not connected', 'Access was not granted. You can close this tab and try again from Clinic Inbox.');
      finish(new CodedError('FORBIDDEN', 'Google Calendar access was not granted in the browser.'));
      return;
    }
    void (async () => {
      try {
        const { tokens } = await client.getToken({ code, codeVerifier, redirect_uri: redirectUri });
        if (!tokens.refresh_token) throw new CodedError('UNAVAILABLE', 'Google did not hand out a refresh token. Remove Clinic Inbox at myaccount.google.com/permissions and connect again.');
        const granted = (tokens.scope ?? '').split(/\s+/).filter(Boolean);
        const missing = scopes.filter((s) => !granted.includes(s));
        if (missing.length > 0) {
          reply(400, 'Google Calendar was not connected', 'Not every permission was granted. Connect again from Clinic Inbox and allow both.');
          finish(new CodedError('FORBIDDEN', `Google granted fewer permissions than booking needs (missing ${missing.length}). Connect again and allow both.`), undefined);
          return;
        }
        reply(200, 'Google Calendar is connected', 'You can close this tab and return to Clinic Inbox.');
        finish(null, { refreshToken: tokens.refresh_token, accessToken: tokens.access_token ?? null, scopes: granted });
      } catch (err) {
        reply(400, 'Google Calendar was not connected', 'Google did not accept the sign-in. Close this tab and try again from Clinic Inbox.');
        finish(translateGoogleError(err));
      }
    })();
  });

  return { authorizeUrl: url, result, cancel: () => finish(new CodedError('CONFLICT', 'Connecting Google Calendar was started again.')) };
}
