// `npm run update-server -- --dir FOLDER [--port 8443] [--host 127.0.0.1] [--cert FILE --key FILE]`
// Serves a folder of release files (installers, latest*.yml and their .sig) over HTTPS with range
// requests, for tests and small deployments. Without --cert/--key it makes a self-signed
// certificate for this start (openssl), prints its SHA-256 fingerprint, and keeps it in memory only.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

export interface Tls {
  key: string;
  cert: string;
}

/** A throwaway self-signed certificate for localhost / 127.0.0.1 (P-256, two days). */
export function selfSignedCertificate(hosts: readonly string[] = ['localhost', '127.0.0.1']): Tls & { fingerprint256: string } {
  const dir = mkdtempSync(join(tmpdir(), 'update-server-'));
  try {
    const san = hosts.map((h) => (/^[\d.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Clinic Inbox update server', '-addext', `subjectAltName=${san}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert, fingerprint256: new X509Certificate(cert).fingerprint256 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range); null: serve whole; 'unsatisfiable': 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'unsatisfiable';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

export interface UpdateServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startUpdateServer(options: { dir: string; port?: number; host?: string; tls?: Tls }): Promise<UpdateServer> {
  const root = resolve(options.dir);
  const tls = options.tls ?? selfSignedCertificate();
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname);
    const file = resolve(root, `.${path}`);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !file.startsWith(root + sep)) {
      res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405).end();
      return;
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const range = parseRange(req.headers.range, size);
    const type = file.endsWith('.yml') ? 'text/yaml' : file.endsWith('.sig') ? 'text/plain' : 'application/octet-stream';
    const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-cache' };
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': String(size === 0 ? 0 : end - start + 1), ...(range ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}) });
    if (req.method === 'HEAD' || size === 0) res.end();
    else createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    server,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } } });
  if (!values.dir) {
    process.stderr.write('usage: npm run update-server -- --dir FOLDER [--port 8443] [--host 127.0.0.1] [--cert FILE --key FILE]\n');
    process.exit(2);
  }
  const own = values.cert && values.key ? { cert: readFileSync(values.cert, 'utf8'), key: readFileSync(values.key, 'utf8') } : null;
  const tls = own ?? selfSignedCertificate([values.host ?? '127.0.0.1', 'localhost']);
  const server = await startUpdateServer({ dir: values.dir, port: Number(values.port ?? 8443), host: values.host, tls });
  const fingerprint = new X509Certificate(tls.cert).fingerprint256;
  process.stdout.write(`serving ${resolve(values.dir)} at ${server.url}\ncertificate SHA-256 ${fingerprint}${own ? '' : ' (self-signed for this start)'}\n`);
  process.stdout.write(`sha256 of the certificate PEM: ${createHash('sha256').update(tls.cert).digest('hex')}\n`);
  process.on('SIGINT', () => void server.close().then(() => process.exit(0)));
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

if (process.argv[1] === import.meta.filename) void main();
