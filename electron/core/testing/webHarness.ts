import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX, BridgeCallSchema, type BridgeDown } from '../../../shared/bridge';
import type { RpcResult } from '../../../shared/rpc';
import type { Core } from '../types';

/**
 * Serves the built renderer on 127.0.0.1 and bridges its RPC over a loopback WebSocket to a
 * `Core`, so the real UI can be driven in a browser (tests, demo) without Electron.
 *
 * Anything on the machine can reach a loopback port, so the socket is guarded like a remote one:
 * a per-launch random token (handed to the page in the URL fragment, which browsers never send
 * to a server, and sent back as a WebSocket subprotocol) and an Origin that must be this server's.
 * Both are checked on the HTTP upgrade, before the socket is accepted.
 */
export interface WebHarnessDeps {
  core: Core;
  /** The renderer's vite build output (index.html + assets). */
  rendererDir: string;
  logger?: Logger;
  /** Largest frame accepted from the page. */
  maxPayload?: number;
}

export interface WebHarness {
  /** Starts listening on 127.0.0.1; resolves to the URL to open (token in the fragment). */
  listen(port?: number): Promise<string>;
  close(): Promise<void>;
  address(): AddressInfo;
  readonly token: string;
  /** Open page connections, for tests that check refusal and cleanup. */
  connections(): number;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** The same policy as the meta tag in renderer/index.html, also sent as a header. */
export const HARNESS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws://127.0.0.1:*; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export function createWebHarness(deps: WebHarnessDeps): WebHarness {
  const root = resolve(deps.rendererDir);
  const token = randomBytes(32).toString('base64url');
  const tokenBytes = Buffer.from(token);
  const log = deps.logger;
  const sockets = new Set<WebSocket>();
  let origin = '';

  const server = createServer((req, res) => {
    void serveStatic(root, req, res).catch((err: unknown) => {
      log?.error({ err }, 'harness static file failed');
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: deps.maxPayload ?? 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(BRIDGE_PROTOCOL) ? BRIDGE_PROTOCOL : false),
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = checkUpgrade(req, origin, tokenBytes);
    if (refusal) {
      log?.warn({ status: refusal }, 'harness refused a WebSocket upgrade');
      socket.end(`HTTP/1.1 ${refusal} ${refusal === 401 ? 'Unauthorized' : refusal === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws));
  });

  function attach(ws: WebSocket): void {
    sockets.add(ws);
    const send = (frame: BridgeDown): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
    };
    // One connection per page: it starts signed out, and the page signs in as a person.
    const connection = deps.core.connect('web-harness 127.0.0.1');
    const unsubscribe = connection.on((event, payload) => send({ type: 'event', event, payload }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text frames only');
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        return ws.close(1007, 'bad frame');
      }
      const call = BridgeCallSchema.safeParse(parsed);
      if (!call.success) return ws.close(1007, 'bad frame');
      const { id, method, params } = call.data;
      void connection
        .dispatch(method, params)
        .catch((err: unknown): RpcResult<unknown> => {
          log?.error({ err, method }, 'dispatch threw');
          return { ok: false, error: { code: 'INTERNAL', message: 'The request failed inside the app.' } };
        })
        .then((result) => send({ type: 'result', id, result }));
    });
    ws.on('close', () => {
      unsubscribe();
      connection.close();
      sockets.delete(ws);
    });
    ws.on('error', () => ws.terminate());
  }

  return {
    token,
    async listen(port = 0) {
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', fail);
          ok();
        });
      });
      const addr = server.address() as AddressInfo;
      origin = `http://127.0.0.1:${addr.port}`;
      return `${origin}/#token=${token}`;
    },
    address: () => server.address() as AddressInfo,
    connections: () => sockets.size,
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((ok) => wss.close(() => ok()));
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/** Returns the HTTP status to refuse with, or null when the upgrade may proceed. */
export function checkUpgrade(req: IncomingMessage, expectedOrigin: string, token: Buffer): 401 | 403 | 404 | null {
  if (new URL(req.url ?? '/', 'http://x').pathname !== '/rpc') return 404;
  if (!expectedOrigin || req.headers.origin !== expectedOrigin) return 403;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!offered.includes(BRIDGE_PROTOCOL)) return 401;
  const presented = offered.find((p) => p.startsWith(BRIDGE_TOKEN_PREFIX))?.slice(BRIDGE_TOKEN_PREFIX.length);
  if (!presented) return 401;
  const bytes = Buffer.from(presented);
  if (bytes.length !== token.length || !timingSafeEqual(bytes, token)) return 401;
  return null;
}

async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = {
    'Content-Security-Policy': HARNESS_CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Cross-Origin-Opener-Policy': 'same-origin',
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
    return;
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    res.writeHead(400, headers).end();
    return;
  }
  if (pathname === '/') pathname = '/index.html';
  const file = normalize(join(root, pathname));
  if (!file.startsWith(root + sep) || pathname.includes('\0')) {
    res.writeHead(404, headers).end();
    return;
  }
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) {
    res.writeHead(404, headers).end();
    return;
  }
  const body = await readFile(file);
  res.writeHead(200, {
    ...headers,
    // Vite names assets by content hash, so they never change under a name: cache them as a browser
    // (or Electron's code cache) would; index.html, which names them, stays uncached.
    ...(pathname.startsWith('/assets/') ? { 'Cache-Control': 'public, max-age=31536000, immutable' } : {}),
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': body.length,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
