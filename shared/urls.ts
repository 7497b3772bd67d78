/**
 * Which addresses the appliance may talk to, decided in one place: the RPC contract checks them at
 * the edge, the core again where it connects, the shell for its dev server. String parsing only
 * (no `URL`): `shared/` runs without Node or DOM types.
 */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

/** Scheme and host of an absolute URL; anything unusual (user info, odd characters) gives a host that matches nothing. */
export function urlParts(value: string): { protocol: string; hostname: string } {
  const m = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)/i.exec(value);
  const authority = m?.[2] ?? '';
  const hostname = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.replace(/:\d+$/, '');
  return { protocol: (m?.[1] ?? '').toLowerCase(), hostname: hostname.toLowerCase() };
}

/** http or https to this computer itself (tests, the demo, a dev server). */
export function isLoopbackHttp(value: string): boolean {
  const url = urlParts(value);
  return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.includes(url.hostname);
}

/** The relay must be reached over TLS, so the relay key pinned at enrolment is the relay's; plain http only on loopback. */
export function isAllowedRelayUrl(value: string): boolean {
  const url = urlParts(value);
  return (url.protocol === 'https:' && url.hostname !== '' && !url.hostname.includes('@')) || isLoopbackHttp(value);
}

/** Where the WhatsApp access token may be sent: Meta's Graph API over HTTPS, or a simulator on loopback. */
export function isAllowedGraphBaseUrl(value: string): boolean {
  const url = urlParts(value);
  return (url.protocol === 'https:' && url.hostname === 'graph.facebook.com') || isLoopbackHttp(value);
}
