// Booking from a conversation against the Google simulator, through real connections to a real
// core (real keychain, real SQLCipher file): connect with PKCE, free slots, book, the taken-slot
// refusal, move, cancel, reminders once and never to an opted-out patient, a grant Google revoked,
// and disconnect revoking at Google.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_CALENDAR_SCOPES, type CalendarSettings, type RpcResult } from '../../../shared/rpc';
import { replaceTemplates } from '../db/repo/templates';
import { keychainAccounts } from '../keys/accounts';
import { createKeytarSecretStore } from '../keys/secretStore';
import { startGoogleSimulator, SIM_CLIENT_ID, type GoogleSimulator } from '../testing/googleSimulator';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { adminConnection, rpc, signIn } from '../testing/users';
import type { Connection } from '../types';

const HOUR = 3_600_000;
// An hour after the seeded patients wrote: their 24-hour window is open.
const START = 1_760_000_000_000 + HOUR;
const RULES: CalendarSettings['rules'] = { slotMinutes: 30, bufferMinutes: 0, timeZone: 'UTC', hours: [0, 1, 2, 3, 4, 5, 6].map((day) => ({ day, from: '09:00', to: '17:00' })) };

let sim: GoogleSimulator;
let s: SeededCore;
let admin: Connection;
let desk: Connection;

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function connectGoogle(): Promise<void> {
  const { authorizeUrl } = await rpc(admin, 'calendar.connect', { clientId: SIM_CLIENT_ID });
  const redirect = await sim.consent(authorizeUrl);
  const landing = await fetch(redirect);
  expect(await landing.text()).toContain('Google Calendar is connected');
  await waitFor(async () => (await rpc(admin, 'calendar.status')).state === 'connected', 'connected');
}

beforeAll(async () => {
  sim = await startGoogleSimulator();
  sim.ownCalendar('room-2');
  s = await startSeededCore({ start: START, core: { google: sim.endpoints() } });
  admin = await adminConnection(s.core);
  desk = await signIn(s.core, { username: 'booking-desk', displayName: 'Booking Desk', roles: ['receptionist'] });
  s.write((db) =>
    replaceTemplates(
      db,
      [
        { id: 't1', name: 'appointment_reminder', language: 'en', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Reminder: your appointment is on {{1}} (reference {{2}}).' }] },
        { id: 't2', name: 'appointment_booked', language: 'en', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Booked for {{1}}, reference {{2}}.' }] },
      ] as never,
      START,
    ),
  );
}, 60_000);

afterAll(async () => {
  await s?.stop();
  await sim?.close();
});

describe('Google Calendar booking', () => {
  it('connects with PKCE S256 and only the two narrow scopes, keeping the refresh token in the keychain alone', async () => {
    await connectGoogle();
    expect(sim.tokenExchanges.filter((t) => t.grantType === 'authorization_code')).toEqual([{ grantType: 'authorization_code', pkceVerified: true, ok: true }]);
    expect(sim.grantedScopes.at(-1)).toEqual([...GOOGLE_CALENDAR_SCOPES]);
    const status = await rpc(admin, 'calendar.status');
    expect(status.scopes).toEqual([...GOOGLE_CALENDAR_SCOPES]);
    const secrets = await createKeytarSecretStore();
    const token = await secrets.get(keychainAccounts(s.core.installationId).googleRefreshToken);
    expect(token).toMatch(/^1\/\//);
    const settingsRows = s.read((db) => db.prepare('SELECT value FROM settings').pluck().all() as string[]);
    expect(settingsRows.some((v) => v.includes(token!))).toBe(false);
  });

  it('books a free slot with initials and a reference only, refuses a slot taken meanwhile, moves and cancels', async () => {
    await rpc(admin, 'calendar.updateSettings', { calendars: [{ id: 'primary', label: 'Dr Jansen' }], rules: RULES, confirmation: { booked: { name: 'appointment_booked', language: 'en' }, moved: null, cancelled: null } });
    const [p1] = s.patients;
    const slots = await rpc(desk, 'calendar.slots', { conversationId: p1.conversationId });
    const free = slots.calendars[0]!.slots;
    expect(free.length).toBeGreaterThan(14 * 10);
    expect(free[0]!.start).toBe(Date.UTC(2025, 9, 9, 10, 0));

    const { booking, offer } = await rpc(desk, 'calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[0]!.start });
    expect(booking.reference).toMatch(/^B-[0-9A-Z]{6}$/);
    expect(offer).toEqual({ kind: 'text', text: expect.stringContaining(booking.reference) as string });
    const [event] = sim.events('primary');
    expect(event!.summary).toBe(`Appointment P · ${booking.reference}`);
    expect(`${event!.summary} ${event!.description}`).not.toMatch(/15555550101|Termin|Patient/);
    expect(await rpc(desk, 'calendar.bookings', { conversationId: p1.conversationId })).toEqual([booking]);

    // The same slot again, and a slot another calendar user filled since the list was shown.
    const again = (await desk.dispatch('calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[0]!.start })) as RpcResult<unknown>;
    expect(again).toMatchObject({ ok: false, error: { code: 'SLOT_TAKEN' } });
    sim.addBusy('primary', free[1]!.start, free[1]!.end);
    const taken = (await desk.dispatch('calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[1]!.start })) as RpcResult<unknown>;
    expect(taken).toMatchObject({ ok: false, error: { code: 'SLOT_TAKEN', message: expect.stringMatching(/just taken/) as string } });
    expect(sim.events('primary')).toHaveLength(2);
    expect(await rpc(desk, 'calendar.bookings', { conversationId: p1.conversationId })).toHaveLength(1);

    const moved = await rpc(desk, 'calendar.move', { bookingId: booking.id, start: free[3]!.start });
    expect(moved.booking).toMatchObject({ id: booking.id, reference: booking.reference, start: free[3]!.start });
    expect(sim.events('primary').find((e) => e.id === event!.id)).toMatchObject({ start: new Date(free[3]!.start).toISOString(), sequence: 1 });

    const cancelled = await rpc(desk, 'calendar.cancel', { bookingId: booking.id });
    expect(cancelled.booking.status).toBe('cancelled');
    expect(sim.events('primary').find((e) => e.id === event!.id)!.status).toBe('cancelled');
    // Free again at Google, so the slot is offered again.
    const after = await rpc(desk, 'calendar.slots', { conversationId: p1.conversationId });
    expect(after.calendars[0]!.slots.some((x) => x.start === free[3]!.start)).toBe(true);

    // A 409 or a 5xx from Google books nothing here.
    sim.fault({ type: 'conflict' });
    expect(await desk.dispatch('calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[5]!.start })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    sim.fault({ type: 'status', status: 503 });
    expect(await desk.dispatch('calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[5]!.start })).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    expect(await rpc(desk, 'calendar.bookings', { conversationId: p1.conversationId })).toHaveLength(1);
    // An expired access token is refreshed without anyone noticing.
    sim.fault({ type: 'expiredToken' });
    const ok = await rpc(desk, 'calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: free[5]!.start });
    await rpc(desk, 'calendar.cancel', { bookingId: ok.booking.id });
  });

  it('sends the reminder once, never to an opted-out patient, and not for an appointment that passed while the desk was off', async () => {
    await rpc(admin, 'calendar.updateSettings', { reminder: { enabled: true, minutesBefore: 24 * 60, template: { name: 'appointment_reminder', language: 'en' } } });
    const [p1, p2] = s.patients;
    const slots = (await rpc(desk, 'calendar.slots', { conversationId: p1.conversationId })).calendars[0]!.slots;
    const tomorrow = slots.find((x) => x.start >= START + 20 * HOUR)!;
    const a = await rpc(desk, 'calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: tomorrow.start });
    const b = await rpc(desk, 'calendar.book', { conversationId: p2.conversationId, calendarId: 'primary', start: slots.find((x) => x.start > tomorrow.start)!.start });
    await rpc(desk, 'privacy.recordConsent', { contactId: p2.contactId, status: 'opted_out', source: 'desk' });
    const later = await rpc(desk, 'calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: slots.find((x) => x.start > START + 3 * 24 * HOUR)!.start });

    const templatesTo = (conversationId: number) =>
      s.read((db) => db.prepare(`SELECT count(*) FROM messages WHERE conversation_id = ? AND type = 'template' AND text LIKE 'Reminder:%'`).pluck().get(conversationId) as number);
    expect(await s.core.calendar.remindNow()).toBe(2);
    expect(await s.core.calendar.remindNow()).toBe(0);
    expect(templatesTo(p1.conversationId)).toBe(1);
    expect(templatesTo(p2.conversationId)).toBe(0);
    expect((await rpc(desk, 'calendar.bookings', { conversationId: p1.conversationId })).find((x) => x.id === a.booking.id)!.reminderSentAt).toBe(START);
    expect((await rpc(desk, 'calendar.bookings', { conversationId: p2.conversationId })).find((x) => x.id === b.booking.id)!.reminderSentAt).toBeNull();

    // The desk is off from now until after the later appointment: back on, it sends nothing late.
    await s.closeCore();
    s.clock.advance(4 * 24 * HOUR);
    await s.reopen();
    expect(await s.core.calendar.remindNow()).toBe(1);
    expect(templatesTo(p1.conversationId)).toBe(1);
    expect(s.read((db) => db.prepare('SELECT reminder_state FROM calendar_bookings WHERE id = ?').pluck().get(later.booking.id))).toBe('passed');
    admin = await adminConnection(s.core);
    desk = await signIn(s.core, { username: 'booking-desk', displayName: 'Booking Desk', roles: ['receptionist'] });
  });

  it('shows reconnect when Google revoked the grant, and disconnect revokes at Google and empties the keychain', async () => {
    const [p1] = s.patients;
    sim.revokeAllGrants();
    const refused = await desk.dispatch('calendar.slots', { conversationId: p1.conversationId });
    expect(refused).toMatchObject({ ok: false, error: { code: 'CALENDAR_RECONNECT_NEEDED' } });
    expect(await rpc(admin, 'calendar.status')).toMatchObject({ state: 'reconnect_needed', bookable: false });

    await connectGoogle();
    expect(sim.activeGrants()).toBe(1);
    const secrets = await createKeytarSecretStore();
    const account = keychainAccounts(s.core.installationId).googleRefreshToken;
    const token = await secrets.get(account);
    await rpc(admin, 'calendar.disconnect');
    expect(sim.revocations.at(-1)).toBe(token);
    expect(sim.activeGrants()).toBe(0);
    expect(await secrets.get(account)).toBeNull();
    expect((await rpc(admin, 'calendar.status')).state).toBe('disconnected');
  });

  it('refuses every admin action to a receptionist', async () => {
    const calls: [string, unknown][] = [
      ['calendar.connect', { clientId: SIM_CLIENT_ID }],
      ['calendar.disconnect', {}],
      ['calendar.getSettings', {}],
      ['calendar.updateSettings', { rules: RULES }],
      ['events.list', {}],
      ['events.create', { url: 'https://pms.example.org/hook', events: ['booking.created'] }],
      ['events.update', { id: 1, enabled: false }],
      ['events.delete', { id: 1 }],
      ['events.deliveries', { subscriptionId: 1 }],
      ['events.sendTest', { id: 1 }],
    ];
    for (const [method, params] of calls) expect(await desk.dispatch(method, params), method).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
