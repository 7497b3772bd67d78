import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_WEBHOOK_BODY_BYTES } from '../shared/wire';
import { ConfigError, loadServeConfig } from './config';

const dir = mkdtempSync(join(tmpdir(), 'relay-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const read = (p: string) => readFileSync(p, 'utf8');
const key = Buffer.alloc(32, 7).toString('base64url');
const base = {
  RELAY_DATA_DIR: dir,
  RELAY_X25519_PRIVATE_KEY: key,
  RELAY_DEDUP_KEY: key,
  RELAY_APP_SECRETS: 'app-secret-number-one,app-secret-number-two',
  RELAY_VERIFY_TOKEN: 'a-verify-token-of-some-length',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadServeConfig(env, read);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('relay configuration', () => {
  it('reads the environment with defaults and splits rotated app secrets', () => {
    const c = loadServeConfig(base, read);
    expect(c.appSecrets).toEqual(['app-secret-number-one', 'app-secret-number-two']);
    expect(c.envelopeTtlMs).toBe(14 * 86_400_000);
    expect(c.port).toBe(8080);
    expect(c.tls).toBeNull();
    expect(c.metricsToken).toBeNull();
    expect(problems({ ...base, RELAY_METRICS_TOKEN: 'short' })).toEqual([expect.stringContaining('RELAY_METRICS_TOKEN')]);
  });

  it('serves metrics on a loopback listener of their own unless told otherwise', () => {
    expect(loadServeConfig(base, read).metricsListen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadServeConfig({ ...base, RELAY_METRICS_LISTEN: '[::1]:9100' }, read).metricsListen).toEqual({ host: '::1', port: 9100 });
    expect(loadServeConfig({ ...base, RELAY_METRICS_LISTEN: 'off' }, read).metricsListen).toBeNull();
    expect(problems({ ...base, RELAY_METRICS_LISTEN: '9464' })).toEqual([expect.stringContaining('RELAY_METRICS_LISTEN: expected host:port')]);
  });

  it('reads secrets from *_FILE (systemd credentials, Docker secrets) and a JSON file under the environment', () => {
    writeFileSync(join(dir, 'token'), 'token-from-a-credential-file\n');
    writeFileSync(join(dir, 'relay.json'), JSON.stringify({ RELAY_PORT: 9443, RELAY_DELIVERY_WINDOW: 8 }));
    const { RELAY_VERIFY_TOKEN: _omit, ...rest } = base;
    const c = loadServeConfig({ ...rest, RELAY_VERIFY_TOKEN_FILE: join(dir, 'token'), RELAY_CONFIG_FILE: join(dir, 'relay.json'), RELAY_DELIVERY_WINDOW: '16' }, read);
    expect(c.verifyToken).toBe('token-from-a-credential-file');
    expect(c.port).toBe(9443);
    expect(c.deliveryWindow).toBe(16);
  });

  it('refuses a body limit whose webhooks appliances could not take, and bounds what requests hold in memory', () => {
    const c = loadServeConfig(base, read);
    expect(c.bodyLimitBytes).toBe(5 * 1024 * 1024);
    expect(c.maxInflightBodyBytes).toBe(256 * 1024 * 1024);
    expect(c.maxConnections).toBe(10_000);
    expect(loadServeConfig({ ...base, RELAY_BODY_LIMIT_BYTES: String(MAX_WEBHOOK_BODY_BYTES) }, read).bodyLimitBytes).toBe(MAX_WEBHOOK_BODY_BYTES);
    const tooBig = problems({ ...base, RELAY_BODY_LIMIT_BYTES: String(MAX_WEBHOOK_BODY_BYTES + 1) });
    expect(tooBig).toEqual([expect.stringMatching(/^RELAY_BODY_LIMIT_BYTES: at most 8388608 bytes \(8 MiB\).*appliances accept/)]);
    expect(problems({ ...base, RELAY_BODY_LIMIT_BYTES: String(64 * 1024 * 1024) })).toHaveLength(1);
    expect(problems({ ...base, RELAY_MAX_INFLIGHT_BODY_BYTES: String(1024 * 1024) })).toEqual([expect.stringMatching(/^RELAY_MAX_INFLIGHT_BODY_BYTES: at least RELAY_BODY_LIMIT_BYTES/)]);
    expect(loadServeConfig({ ...base, RELAY_MAX_CONNECTIONS: '500' }, read).maxConnections).toBe(500);
  });

  it('names every bad variable without echoing secret values', () => {
    const p = problems({ ...base, RELAY_X25519_PRIVATE_KEY: 'c2hvcnQ', RELAY_PORT: 'eighty', RELAY_APP_SECRETS: 'short' });
    expect(p.join('\n')).toMatch(/RELAY_X25519_PRIVATE_KEY: expected 32 bytes/);
    expect(p.join('\n')).toMatch(/RELAY_PORT/);
    expect(p.join('\n')).toMatch(/RELAY_APP_SECRETS/);
    expect(p.join('\n')).not.toContain('c2hvcnQ');
    const { RELAY_DEDUP_KEY: _d, ...missing } = base;
    expect(problems(missing)).toEqual(['RELAY_DEDUP_KEY: is required (or set RELAY_DEDUP_KEY_FILE)']);
    expect(problems({ ...base, RELAY_VERIFY_TOKEN_FILE: join(dir, 'nope') }).join()).toMatch(/either RELAY_VERIFY_TOKEN or RELAY_VERIFY_TOKEN_FILE/);
    expect(problems({ ...base, RELAY_TLS_CERT_FILE: '/x.pem' }).join()).toMatch(/RELAY_TLS_KEY_FILE/);
  });
});
