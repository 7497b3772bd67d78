import { execFileSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway self-signed certificate for 127.0.0.1 (P-256, two days), made with openssl. */
export function selfSignedLoopbackCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-events-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Clinic Inbox test subscriber', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function signatureVerifies(raw: Buffer, signature: string, secret: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const got = Buffer.from(signature);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export interface ReceivedEvent {
  raw: Buffer;
  body: { id: string; type: string; conversationId: number | null; data: Record<string, unknown> } & Record<string, unknown>;
  signature: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * A practice-management system's webhook endpoint, for tests and the benchmark: HTTPS on
 * 127.0.0.1 with its own certificate, recording what it receives; `down()` makes it answer 503
 * (a subscriber being deployed), `up()` brings it back.
 */
export interface EventSubscriber {
  readonly url: string;
  readonly cert: string;
  readonly received: ReceivedEvent[];
  /** Whether `raw` carries a valid `sha256=` HMAC under `secret` (the check a subscriber makes). */
  verifies(e: ReceivedEvent, secret: string): boolean;
  down(): void;
  up(): void;
  /** Answers each request this long after it arrived (a slow subscriber; 0 by default). */
  slow(ms: number): void;
  /** Calls answered with 503 while down. */
  refused: number;
  /** Calls answered with 401: their signature did not verify under `options.secret` (not recorded). */
  forged: number;
  close(): Promise<void>;
}

export async function startEventSubscriber(
  options: {
    path?: string;
    /** When it gives a secret, each request's signature is checked on arrival, as a practice-management system does: 401 if it does not verify. */
    secret?: () => string | null;
  } = {},
): Promise<EventSubscriber> {
  const tls = selfSignedLoopbackCertificate();
  const received: ReceivedEvent[] = [];
  let isDown = false;
  let delayMs = 0;
  const sockets = new Set<Socket>();
  const sub = { refused: 0, forged: 0 } as EventSubscriber & { refused: number; forged: number };
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (isDown) {
        sub.refused++;
        res.writeHead(503).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      const signature = String(req.headers['x-clinic-inbox-signature-256'] ?? '');
      const secret = options.secret?.();
      // Verified before parsing, as the README tells subscribers to.
      if (secret && !signatureVerifies(raw, signature, secret)) {
        sub.forged++;
        res.writeHead(401).end();
        return;
      }
      received.push({ raw, body: JSON.parse(raw.toString('utf8')) as ReceivedEvent['body'], signature, headers: req.headers });
      if (delayMs > 0) setTimeout(() => res.writeHead(204).end(), delayMs);
      else res.writeHead(204).end();
    });
  });
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(sub, {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}${options.path ?? '/hooks/clinic-inbox'}`,
    cert: tls.cert,
    received,
    verifies: (e: ReceivedEvent, secret: string) => signatureVerifies(e.raw, e.signature, secret),
    down: () => void (isDown = true),
    up: () => void (isDown = false),
    slow: (ms: number) => void (delayMs = ms),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
