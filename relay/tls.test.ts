import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { RelayProcess } from './testing/relayProcess';
import { signWebhook, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

let dir: string;
let relay: RelayProcess;
let ca: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'relay-tls-'));
  // A throwaway self-signed certificate for 127.0.0.1, made with the system's openssl.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=relay.test', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  ca = readFileSync(join(dir, 'cert.pem'));
  relay = await RelayProcess.start({ env: { RELAY_TLS_CERT_FILE: join(dir, 'cert.pem'), RELAY_TLS_KEY_FILE: join(dir, 'key.pem') } });
});
afterAll(async () => {
  await relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function request(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: relay.port, path, method, ca, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('TLS served by the relay itself', () => {
  it('serves HTTPS with the configured certificate and refuses plain HTTP', async () => {
    expect((await request('GET', '/healthz')).status).toBe(200);
    await relay.createTenant({ tenantId: 'clinic-tls', phoneNumberIds: ['660001'] });
    // Enrolled over HTTPS too: a clinic without an appliance would get 503 (Meta retries later).
    const appliance = TestAppliance.create();
    const code = await relay.issueEnrolmentCode('clinic-tls');
    const enrol = JSON.stringify({ code, signingPublicKey: appliance.signingPublicKey, encryptionPublicKey: appliance.encryptionPublicKey });
    expect((await request('POST', '/v1/enrol', Buffer.from(enrol), { 'content-type': 'application/json' })).status).toBe(200);
    const raw = Buffer.from(JSON.stringify(textMessageWebhook({ phoneNumberId: '660001', wamid: 'wamid.tls', text: 'x' })));
    const res = await request('POST', '/webhooks/whatsapp', raw, { 'x-hub-signature-256': signWebhook(raw, relay.appSecret) });
    expect(res.status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${relay.port}/healthz`)).rejects.toThrow();
  });

  it('answers WebSocket upgrades over TLS (and still refuses them without auth)', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/v1/appliance`, { ca });
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => resolve(-1));
    });
    ws.terminate();
    expect(status).toBe(401);
  });
});
