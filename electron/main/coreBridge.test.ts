import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCoreBridge, parseInvokeArgs, type CoreBridge, type CoreChild } from './coreBridge';

/** Stands in for the utility process: records what main posts and lets the test answer. */
class FakeChild extends EventEmitter implements CoreChild {
  posted: unknown[] = [];
  killed = false;
  postMessage(message: unknown): void {
    this.posted.push(message);
  }
  kill(): boolean {
    this.killed = true;
    return true;
  }
}

const logger = pino({ level: 'silent' });
let bridge: CoreBridge | null = null;
afterEach(() => {
  bridge?.stop();
  bridge = null;
  vi.useRealTimers();
});

describe('IPC arguments', () => {
  it('accept only methods of the RPC contract', () => {
    expect(parseInvokeArgs('inbox.listConversations', { filter: 'all' })).toEqual({ method: 'inbox.listConversations', params: { filter: 'all' } });
    expect(parseInvokeArgs('relay.status', undefined)).toEqual({ method: 'relay.status', params: {} });
    expect(parseInvokeArgs('__proto__', {})).toBeNull();
    expect(parseInvokeArgs('shell.openExternal', {})).toBeNull();
    expect(parseInvokeArgs(42, {})).toBeNull();
  });
});

describe('core bridge', () => {
  it('matches answers to calls, whatever order they come back in', async () => {
    const child = new FakeChild();
    bridge = createCoreBridge({ spawn: () => child, onEvent: () => {}, logger });
    const a = bridge.invoke(1, 'relay.status', {});
    const b = bridge.invoke(1, 'whatsapp.status', {});
    const [ca, cb] = child.posted as { id: number; method: string }[];
    expect(ca?.method).toBe('relay.status');
    child.emit('message', { type: 'result', id: cb!.id, result: { ok: true, value: 'B' } });
    child.emit('message', { type: 'result', id: ca!.id, result: { ok: false, error: { code: 'NOT_PAIRED', message: 'x' } } });
    expect(await a).toEqual({ ok: false, error: { code: 'NOT_PAIRED', message: 'x' } });
    expect(await b).toEqual({ ok: true, value: 'B' });
  });

  it('forwards known push events and ignores garbage and unknown events', () => {
    const child = new FakeChild();
    const events: string[] = [];
    bridge = createCoreBridge({ spawn: () => child, onEvent: (_conn, e) => events.push(e), logger });
    child.emit('message', { type: 'event', conn: 1, event: 'message.received', payload: { conversationId: 1, messageId: 2 } });
    child.emit('message', { type: 'event', conn: 1, event: 'shell.exec', payload: {} });
    child.emit('message', 'not a frame');
    child.emit('message', { type: 'result', id: 999, result: { ok: true, value: 1 } });
    expect(events).toEqual(['message.received']);
  });

  it('fails calls in flight when the core dies, then starts a new core', async () => {
    vi.useFakeTimers();
    const children: FakeChild[] = [];
    bridge = createCoreBridge({ spawn: () => children[children.push(new FakeChild()) - 1]!, onEvent: () => {}, logger, restartDelayMs: 100 });
    const call = bridge.invoke(1, 'relay.status', {});
    children[0]!.emit('exit', 1);
    expect(await call).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    expect(children).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(children).toHaveLength(2);
    void bridge.invoke(1, 'relay.status', {});
    expect(children[1]!.posted).toHaveLength(1);
  });

  it('answers UNAVAILABLE when the core does not reply in time', async () => {
    vi.useFakeTimers();
    bridge = createCoreBridge({ spawn: () => new FakeChild(), onEvent: () => {}, logger, callTimeoutMs: 500 });
    const call = bridge.invoke(1, 'relay.status', {});
    await vi.advanceTimersByTimeAsync(500);
    expect(await call).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
  });

  it('does not restart a core it stopped on purpose', async () => {
    vi.useFakeTimers();
    const children: FakeChild[] = [];
    bridge = createCoreBridge({ spawn: () => children[children.push(new FakeChild()) - 1]!, onEvent: () => {}, logger, restartDelayMs: 10 });
    bridge.stop();
    expect(children[0]!.killed).toBe(true);
    children[0]!.emit('exit', 0);
    await vi.advanceTimersByTimeAsync(50);
    expect(children).toHaveLength(1);
    expect(await bridge.invoke(1, 'relay.status', {})).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    bridge = null;
  });
});
