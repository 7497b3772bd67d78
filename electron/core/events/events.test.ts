// Event subscriptions against a local HTTPS subscriber whose self-signed certificate the core is
// told to trust: signed bodies that verify, in order per conversation, retried while the
// subscriber is down, no message text unless the admin allowed it, a delivery log without bodies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_SCHEMA, type RpcResult } from '../../../shared/rpc';
import { startEventSubscriber, type EventSubscriber } from '../testing/eventSubscriber';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { IT_ADMIN, TEST_PASSWORD, adminConnection, rpc } from '../testing/users';
import type { Connection } from '../types';

let sub: EventSubscriber;
let s: SeededCore;
let admin: Connection;

beforeAll(async () => {
  sub = await startEventSubscriber();
  s = await startSeededCore({ core: { events: { ca: sub.cert } } });
  admin = await adminConnection(s.core);
}, 60_000);

afterAll(async () => {
  await s?.stop();
  await sub?.close();
});

const inboundOf = (conversationId: number): number =>
  s.read((db) => db.prepare(`SELECT id FROM messages WHERE conversation_id = ? AND direction = 'inbound' ORDER BY id LIMIT 1`).pluck().get(conversationId) as number);

describe('event subscriptions', () => {
  it('accepts https, and plain http only on this computer or the LAN once confirmed', async () => {
    const bad = async (url: string, plainHttpConfirmed = false) =>
      ((await admin.dispatch('events.create', { url, events: ['booking.created'], plainHttpConfirmed })) as RpcResult<unknown>).ok;
    expect(await bad('http://pms.example.org/hook', true)).toBe(false);
    expect(await bad('http://192.168.1.20/hook')).toBe(false);
    expect(await bad('ftp://192.168.1.20/hook', true)).toBe(false);
    const lan = await rpc(admin, 'events.create', { url: 'http://192.168.1.20/hook', events: ['booking.created'], plainHttpConfirmed: true });
    expect(lan.subscription.plainHttp).toBe(true);
    await rpc(admin, 'events.delete', { id: lan.subscription.id });
    expect(await rpc(admin, 'events.list')).toEqual([]);
  });

  it('delivers signed events in order per conversation, without message text unless allowed, and retries a subscriber that was down', async () => {
    const [p1, p2] = s.patients;
    const { subscription, secret } = await rpc(admin, 'events.create', { url: sub.url, events: ['message.received', 'booking.created', 'contact.opted_out', 'conversation.resolved'] });
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await rpc(admin, 'events.list'))).not.toContain(secret);
    expect(s.read((db) => db.prepare('SELECT secret_sealed FROM event_subscriptions').pluck().get() as string)).not.toContain(secret);

    const m1 = inboundOf(p1.conversationId);
    const m2 = inboundOf(p2.conversationId);
    s.core.events.observe('message.received', { conversationId: p1.conversationId, messageId: m1 });
    s.core.events.observe('message.received', { conversationId: p2.conversationId, messageId: m2 });
    await rpc(admin, 'privacy.recordConsent', { contactId: p1.contactId, status: 'opted_out', source: 'desk' });
    // An event type this subscriber did not choose is not sent.
    s.core.events.observe('message.statusChanged', { conversationId: p1.conversationId, messageId: m1, status: 'read' });
    await s.core.events.deliverNow();
    expect(sub.received).toHaveLength(3);

    expect(sub.received.map((e) => e.body.type)).toEqual(expect.arrayContaining(['message.received', 'message.received', 'contact.opted_out']));
    for (const e of sub.received) {
      expect(sub.verifies(e, secret)).toBe(true);
      expect(sub.verifies(e, 'f'.repeat(64))).toBe(false);
      expect(e.body).toMatchObject({ schema: EVENT_SCHEMA, id: expect.stringMatching(/^evt_/) as string });
      expect(e.headers['x-clinic-inbox-delivery']).toBe(e.body.id);
    }
    const first = sub.received.find((e) => e.body.conversationId === p1.conversationId)!;
    expect(first.body.data).toMatchObject({ conversationId: p1.conversationId, contactId: p1.contactId, messageId: m1, messageType: 'text' });
    const everything = sub.received.map((e) => e.raw.toString()).join('\n');
    expect(everything).not.toMatch(/Termin|15555550101|Patient 0/);

    // Text is included once the admin allows it.
    await rpc(admin, 'events.update', { id: subscription.id, includeText: true });
    s.core.events.observe('message.received', { conversationId: p2.conversationId, messageId: m2 });
    await s.core.events.deliverNow();
    expect(sub.received.at(-1)!.body.data.text).toBe('Termin bitte 1');
    await rpc(admin, 'events.update', { id: subscription.id, includeText: false });

    // Down: the first event waits and the ones after it in the same conversation wait behind it.
    sub.received.length = 0;
    sub.down();
    for (let i = 0; i < 5; i++) s.core.events.publish({ type: 'booking.created', conversationId: p2.conversationId, contactId: p2.contactId, data: { n: i } });
    await s.core.events.deliverNow();
    expect(sub.refused).toBe(1);
    let log = await rpc(admin, 'events.deliveries', { subscriptionId: subscription.id, limit: 5 });
    expect(log.every((d) => d.status === 'pending')).toBe(true);
    expect(log.at(-1)).toMatchObject({ attempts: 1, lastStatusCode: 503, lastError: 'HTTP 503' });
    expect(JSON.stringify(log)).not.toMatch(/"n":|body/);

    sub.up();
    await s.core.events.deliverNow();
    expect(sub.received).toHaveLength(0); // still backing off
    s.clock.advance(60_000);
    await s.core.events.deliverNow();
    expect(sub.received.map((e) => e.body.data.n)).toEqual([0, 1, 2, 3, 4]);
    log = await rpc(admin, 'events.deliveries', { subscriptionId: subscription.id, limit: 5 });
    expect(log.every((d) => d.status === 'delivered' && d.latencyMs !== null)).toBe(true);
    expect(log.at(-1)!.attempts).toBe(2);

    // Gone for more than a day: marked failed, and the conversation moves on.
    sub.down();
    s.core.events.publish({ type: 'booking.created', conversationId: p2.conversationId, contactId: p2.contactId, data: { n: 'lost' } });
    await s.core.events.deliverNow();
    s.clock.advance(25 * 3_600_000);
    await s.core.events.deliverNow();
    // The idle session expired meanwhile.
    admin = s.core.connect('test');
    await rpc(admin, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
    expect((await rpc(admin, 'events.deliveries', { subscriptionId: subscription.id, limit: 1 }))[0]).toMatchObject({ status: 'failed', attempts: 2 });
    sub.up();

    // Patient data left the computer: audited as export, naming the patients.
    const exports = s.read((db) => db.prepare(`SELECT count(*) FROM audit_log WHERE action = 'export' AND method = 'events.deliver'`).pluck().get() as number);
    expect(exports).toBeGreaterThan(0);

    const { eventId } = await rpc(admin, 'events.sendTest', { id: subscription.id });
    await s.core.events.deliverNow();
    expect(sub.received.at(-1)!.body).toMatchObject({ id: eventId, type: 'test', conversationId: null });
    expect(sub.verifies(sub.received.at(-1)!, secret)).toBe(true);

    // Erasure: the patient's waiting events are dropped, and subscribers hear of the erasure.
    await rpc(admin, 'events.update', { id: subscription.id, events: ['booking.created', 'contact.erased'] });
    sub.down();
    s.core.events.publish({ type: 'booking.created', conversationId: p1.conversationId, contactId: p1.contactId, data: { n: 'waiting' } });
    await s.core.events.deliverNow();
    sub.up();
    await rpc(admin, 'privacy.eraseContact', { contactId: p1.contactId, reason: 'The patient asked to be forgotten' });
    s.clock.advance(60_000);
    await s.core.events.deliverNow();
    expect(sub.received.at(-1)!.body).toMatchObject({ type: 'contact.erased', data: { contactId: p1.contactId } });
    expect(sub.received.some((e) => e.body.data.n === 'waiting')).toBe(false);
  });
});
