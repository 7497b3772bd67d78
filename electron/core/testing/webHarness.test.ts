import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX } from '../../../shared/bridge';
import type { Core, CoreEventListener } from '../types';
import { createWebHarness, type WebHarness } from './webHarness';

// The harness's own guards (token, Origin, static files) against a recording core: the browser
// tests in tests/ui drive the real core through the same harness.
const calls: { origin: string; method: string; params: unknown }[] = [];
const listeners = new Set<CoreEventListener>();
const opened: string[] = [];
const recordingCore: Core = {
  connect(origin) {
    opened.push(origin);
    const mine = new Set<CoreEventListener>();
    return {
      async dispatch(method, params) {
        calls.push({ origin, method, params });
        return { ok: true, value: { echo: method } };
      },
      on(listener) {
        listeners.add(listener);
        mine.add(listener);
        return () => listeners.delete(listener);
      },
      close() {
        for (const l of mine) listeners.delete(l);
      },
    };
  },
  async close() {},
};

let dir: string;
let harness: WebHarness;
let url: string;
let origin: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'harness-test-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(tmpdir(), 'harness-secret.txt'), 'outside');
  harness = createWebHarness({ core: recordingCore, rendererDir: dir });
  url = await harness.listen(0);
  origin = new URL(url).origin;
});
afterAll(async () => {
  await harness.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(tmpdir(), 'harness-secret.txt'), { force: true });
});

function open(protocols: string[], headers: Record<string, string> = { Origin: origin }): Promise<{ ws: WebSocket | null; status: number | null }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${origin.replace('http', 'ws')}/rpc`, protocols, { headers });
    ws.once('open', () => resolve({ ws, status: null }));
    ws.once('unexpected-response', (_req, res) => resolve({ ws: null, status: res.statusCode ?? 0 }));
    ws.once('error', () => resolve({ ws: null, status: -1 }));
  });
}

describe('web harness', () => {
  it('hands the token over in the fragment, which browsers never send to a server', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
  });

  it('serves the renderer with the CSP header and refuses paths outside it', async () => {
    const index = await fetch(`${origin}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(index.headers.get('content-security-policy')).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect((await fetch(`${origin}/assets/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${origin}/..%2fharness-secret.txt`)).status).toBe(404);
    expect((await fetch(`${origin}/assets/..%2f..%2fharness-secret.txt`)).status).toBe(404);
    expect((await fetch(`${origin}/`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a socket without the token, with a wrong token, or from another origin', async () => {
    expect((await open([BRIDGE_PROTOCOL])).status).toBe(401);
    expect((await open([BRIDGE_PROTOCOL, `${BRIDGE_TOKEN_PREFIX}${'A'.repeat(43)}`])).status).toBe(401);
    expect((await open([BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX + harness.token], { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await open([BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX + harness.token], {})).status).toBe(403);
    expect(calls).toHaveLength(0);
  });

  it('gives each page its own connection (signed out until the page signs in) and pushes its events', async () => {
    const { ws } = await open([BRIDGE_PROTOCOL, BRIDGE_TOKEN_PREFIX + harness.token]);
    expect(ws).not.toBeNull();
    const frames: unknown[] = [];
    ws!.on('message', (d) => frames.push(JSON.parse(d.toString())));
    ws!.send(JSON.stringify({ type: 'call', id: 7, method: 'relay.status', params: {} }));
    await expect.poll(() => frames.length).toBe(1);
    expect(frames[0]).toEqual({ type: 'result', id: 7, result: { ok: true, value: { echo: 'relay.status' } } });
    expect(calls[0]).toMatchObject({ method: 'relay.status', origin: 'web-harness 127.0.0.1' });
    expect(opened).toEqual(['web-harness 127.0.0.1']);
    for (const l of listeners) l('message.received', { conversationId: 1, messageId: 2 });
    await expect.poll(() => frames.length).toBe(2);
    expect(frames[1]).toEqual({ type: 'event', event: 'message.received', payload: { conversationId: 1, messageId: 2 } });

    // A malformed frame closes the socket and reaches nothing.
    const closed = new Promise<number>((r) => ws!.once('close', (code) => r(code)));
    ws!.send('{"type":"call","id":"x"}');
    expect(await closed).toBe(1007);
    expect(calls).toHaveLength(1);
    await expect.poll(() => harness.connections()).toBe(0);
    expect(listeners.size).toBe(0);
  });
});
