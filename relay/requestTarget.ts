/**
 * The path and query of a request exactly as the client sent them. `new URL(req.url, base)` reads
 * `//host/webhooks/whatsapp` as a URL with host `host` and path `/webhooks/whatsapp`, so a proxy
 * rule on the path prefix and the relay would disagree about which endpoint was asked for; here
 * the path is the raw bytes before `?`, matched exactly by the callers.
 */
export function requestTarget(url: string | undefined): { path: string; query: URLSearchParams } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: new URLSearchParams() } : { path: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}
