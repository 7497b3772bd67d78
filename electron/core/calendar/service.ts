import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import {
  BOOKING_HORIZON_DAYS,
  GOOGLE_CALENDAR_SCOPES,
  type BookableCalendar,
  type BookingOffer,
  type CalendarSettings,
  type CalendarStatus,
  type RpcEventName,
  type RpcEventPayload,
  type Slot,
} from '../../../shared/rpc';
import { getTemplate } from '../db/repo/templates';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { createJobLoop, type JobLoop } from '../jobLoop';
import { keychainAccounts } from '../keys/accounts';
import type { SecretStore } from '../keys/secretStore';
import { conversationWindow } from '../outbox/sendService';
import { currentConsentStatus } from '../privacy/consent';
import type { AuditRecord } from '../rpc/dispatch';
import { assertAllowedEndpoints, calendarApi, GrantRevokedError, GOOGLE_ENDPOINTS, revokeAtGoogle, type CalendarApi, type GoogleEndpoints } from './google';
import { beginConsent, type PendingConsent } from './oauth';
import {
  bookingsOfContact,
  cancelBooking,
  contactInitials,
  dueReminders,
  getBooking,
  insertBooking,
  loadCalendarSettings,
  loadConnection,
  moveBooking,
  saveCalendarSettings,
  saveConnection,
  settleReminder,
  type ConnectionRecord,
  type StoredBooking,
} from './repo';
import { freeSlots, isTimeZone, overlapsAny, type Interval } from './slots';

const DAY_MS = 24 * 3_600_000;

/** What a booking change tells the clinic's other systems (`events/`). */
export interface BookingEvent {
  type: 'booking.created' | 'booking.moved' | 'booking.cancelled';
  booking: StoredBooking;
}

export interface CalendarDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  secrets: SecretStore;
  installationId: string;
  emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  audit(record: AuditRecord): void;
  /** Queues a WhatsApp template with no author (a reminder); returns the message id. */
  sendTemplate(conversationId: number, name: string, language: string, parameters: string[]): number;
  onBooking?(event: BookingEvent): void;
  google?: Partial<GoogleEndpoints>;
  /** How often the reminder loop looks for due reminders. */
  reminderIntervalMs?: number;
}

export interface CalendarService {
  load(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
  status(): CalendarStatus;
  settings(): CalendarSettings;
  updateSettings(patch: Partial<CalendarSettings>): CalendarSettings;
  connect(clientId: string, clientSecret?: string): Promise<{ authorizeUrl: string; done: Promise<void> }>;
  disconnect(): Promise<CalendarStatus>;
  slots(conversationId: number, calendarId?: string): Promise<{ from: number; to: number; calendars: (BookableCalendar & { slots: Slot[] })[] }>;
  bookings(conversationId: number): StoredBooking[];
  book(p: { conversationId: number; calendarId: string; start: number; by: string; commit?: Commit }): Promise<{ booking: StoredBooking; offer: BookingOffer }>;
  move(p: { bookingId: number; calendarId?: string; start: number; commit?: Commit }): Promise<{ booking: StoredBooking; offer: BookingOffer }>;
  cancel(p: { bookingId: number; commit?: Commit }): Promise<{ booking: StoredBooking; offer: BookingOffer }>;
  /** One reminder pass now (tests, and the loop). */
  remindNow(): Promise<number>;
  contactOf(conversationId: number): number;
  bookingOf(bookingId: number): StoredBooking | null;
}

/**
 * Runs a booking change's writes once Google took it: the RPC's `commitWithAudit`, so the booking,
 * its events for subscribers and the audit entry are one commit (one disk flush, all or nothing).
 */
export type Commit = <T>(write: () => T) => T;
const direct: Commit = (write) => write();

const REFERENCE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTVWXYZ';
const newReference = (): string => 'B-' + [...randomBytes(6)].map((b) => REFERENCE_ALPHABET[b % REFERENCE_ALPHABET.length]).join('');
/** Google event ids are base32hex (a–v, 0–9); choosing ours makes a retried insert a 409, not a double booking. */
const newEventId = (): string => [...randomBytes(20)].map((b) => '0123456789abcdefghijklmnopqrstuv'[b & 31]).join('');

const fill = (template: string, values: Record<string, string>): string => template.replace(/\{(\w+)\}/g, (m, k: string) => values[k] ?? m);

export function createCalendar(deps: CalendarDeps): CalendarService {
  const { db, now, secrets, logger } = deps;
  const log = logger.child({ part: 'calendar' });
  const endpoints: GoogleEndpoints = { ...GOOGLE_ENDPOINTS, ...deps.google };
  assertAllowedEndpoints(endpoints);
  const tokenAccount = keychainAccounts(deps.installationId).googleRefreshToken;
  let refreshToken: string | null = null;
  let api: CalendarApi | null = null;
  let pending: PendingConsent | null = null;
  let connecting = false;
  // One booking change at a time: the free/busy re-check and the insert cannot interleave with another desk's.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  // Read on every booking and slot list: kept in memory, replaced when an admin saves.
  let cachedSettings: CalendarSettings | null = null;
  const settings = (): CalendarSettings => (cachedSettings ??= loadCalendarSettings(db));
  // Read on every Google call: kept in memory, written through.
  let cachedConnection: ConnectionRecord | null = null;
  const connection = (): ConnectionRecord => (cachedConnection ??= loadConnection(db));
  const storeConnection = (record: ConnectionRecord) => {
    saveConnection(db, record, now());
    cachedConnection = record;
  };
  const setConnection = (record: ConnectionRecord) => {
    storeConnection(record);
    deps.emit('calendar.stateChanged', { state: record.state });
  };

  function clientConfig() {
    const s = settings();
    if (!s.clientId) throw new CodedError('CALENDAR_NOT_CONNECTED', 'Google Calendar is not connected: an admin connects it in Settings.');
    return { endpoints, clientId: s.clientId, clientSecret: connection().clientSecret ?? undefined };
  }

  function requireApi(): CalendarApi {
    const c = connection();
    if (c.state === 'reconnect_needed') throw new GrantRevokedError();
    if (!api || c.state !== 'connected') throw new CodedError('CALENDAR_NOT_CONNECTED', 'Google Calendar is not connected: an admin connects it in Settings.');
    return api;
  }

  /** Any Google call that finds the grant gone turns into the admin's banner, never a silent failure. */
  async function google<T>(op: (a: CalendarApi) => Promise<T>): Promise<T> {
    const a = requireApi();
    try {
      return await op(a);
    } catch (err) {
      if (err instanceof GrantRevokedError) {
        log.warn('google calendar grant revoked or expired; admin must reconnect');
        setConnection({ ...connection(), state: 'reconnect_needed', problem: 'Google no longer accepts the connection (revoked or expired).' });
        deps.audit({ userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, action: 'alert', method: 'calendar.grant', contactIds: [], origin: 'core', outcome: 'error', errorCode: err.code });
      }
      throw err;
    }
  }

  function calendarOf(id: string): BookableCalendar {
    const c = settings().calendars.find((x) => x.id === id);
    if (!c) throw new CodedError('NOT_FOUND', 'That calendar is not bookable; an admin chooses the bookable calendars in Settings.');
    return c;
  }

  function contactOf(conversationId: number): number {
    const row = stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined;
    if (!row) throw new CodedError('NOT_FOUND', `Conversation ${conversationId} does not exist.`);
    return row.contact_id;
  }

  function eventText(b: { reference: string; contactId: number; calendarLabel: string }): { summary: string; description: string } {
    const s = settings();
    const values = { initials: contactInitials(db, b.contactId), reference: b.reference, calendar: b.calendarLabel };
    return { summary: fill(s.titleTemplate, values).slice(0, 1024), description: fill(s.descriptionTemplate, values).slice(0, 8000) };
  }

  // Building a DateTimeFormat costs more than the rest of a booking's own work: one per locale and zone.
  const whenFormats = new Map<string, Intl.DateTimeFormat | null>();
  function whenText(at: number): string {
    const { messages, rules } = settings();
    const key = `${messages.locale}|${rules.timeZone}`;
    let f = whenFormats.get(key);
    if (f === undefined) {
      try {
        f = new Intl.DateTimeFormat(messages.locale, { timeZone: rules.timeZone, weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });
      } catch {
        f = null;
      }
      whenFormats.set(key, f);
    }
    return f ? f.format(at) : new Date(at).toISOString();
  }

  /** The message the desk is offered: free text inside the window, the clinic's template outside it. */
  function offerFor(kind: 'booked' | 'moved' | 'cancelled', b: StoredBooking): BookingOffer {
    const s = settings();
    const values = { when: whenText(b.start), reference: b.reference, calendar: b.calendarLabel };
    if (conversationWindow(db, b.conversationId, now()).open) return { kind: 'text', text: fill(s.messages[kind], values) };
    if (currentConsentStatus(db, b.contactId) === 'opted_out') return { kind: 'none', reason: 'opted_out' };
    const ref = s.confirmation[kind];
    if (!ref) return { kind: 'none', reason: 'no_template' };
    return { kind: 'template', name: ref.name, language: ref.language, parameters: templateParameters(ref.name, ref.language, [values.when, values.reference]) };
  }

  function templateParameters(name: string, language: string, values: string[]): string[] {
    const t = getTemplate(db, name, language);
    return values.slice(0, t ? t.parameterCount : values.length);
  }

  /** Busy periods from Google for one calendar, widened by nothing: the buffer is applied by the slot rules. */
  async function busyOf(calendarId: string, from: number, to: number): Promise<Interval[]> {
    const answer = (await google((a) => a.freeBusy([calendarId], from, to))).get(calendarId);
    if (!answer || answer === 'notFound') throw new CodedError('NOT_FOUND', 'Google does not show this calendar to the connected account; an admin checks the bookable calendars.');
    return answer;
  }

  /** Refuses a start that is not a slot of the rules, and a slot that is no longer free. */
  async function assertFree(calendarId: string, start: number, ignore?: Interval): Promise<Interval> {
    const rules = settings().rules;
    const end = start + rules.slotMinutes * 60_000;
    if (start <= now()) throw new CodedError('VALIDATION_FAILED', 'That time has already passed; pick another slot.');
    if (start > now() + BOOKING_HORIZON_DAYS * DAY_MS) throw new CodedError('VALIDATION_FAILED', `Slots can be booked up to ${BOOKING_HORIZON_DAYS} days ahead.`);
    // The slot's own surroundings: enough for the grid check and the buffer.
    const from = start - 12 * 3_600_000;
    const to = end + 12 * 3_600_000;
    if (!freeSlots(rules, [], from, to).some((s) => s.start === start)) throw new CodedError('VALIDATION_FAILED', 'That time is not a bookable slot (outside opening hours or off the slot grid).');
    let busy = await busyOf(calendarId, from, to);
    if (ignore) busy = busy.filter((b) => !(b.start === ignore.start && b.end === ignore.end));
    const buffer = rules.bufferMinutes * 60_000;
    if (overlapsAny([...busy].sort((a, b) => a.start - b.start), start - buffer, end + buffer)) {
      throw new CodedError('SLOT_TAKEN', 'This slot was just taken. Pick another one.');
    }
    return { start, end };
  }

  function activeBooking(id: number): StoredBooking {
    const b = getBooking(db, id);
    if (!b || b.status !== 'booked') throw new CodedError('NOT_FOUND', 'There is no active booking with this id.');
    return b;
  }

  function changed(type: BookingEvent['type'], booking: StoredBooking): void {
    try {
      deps.onBooking?.({ type, booking });
    } catch (err) {
      log.error({ err: err instanceof Error ? err.name : 'error' }, 'booking event not queued');
    }
  }

  async function remindPass(): Promise<number> {
    const s = settings();
    if (!s.reminder.enabled || !s.reminder.template) return 0;
    const template = s.reminder.template;
    const at = now();
    let settled = 0;
    for (const b of dueReminders(db, at + s.reminder.minutesBefore * 60_000)) {
      const result = db.transaction((): 'sent' | 'opted_out' | 'passed' | null => {
        // Caught up after the desk was off: an appointment that already began gets no reminder.
        if (b.start <= at) return settleReminder(db, b.id, 'passed', at, null) ? 'passed' : null;
        if (currentConsentStatus(db, b.contactId) === 'opted_out') return settleReminder(db, b.id, 'opted_out', at, null) ? 'opted_out' : null;
        const messageId = deps.sendTemplate(b.conversationId, template.name, template.language, templateParameters(template.name, template.language, [whenText(b.start), b.reference]));
        return settleReminder(db, b.id, 'sent', at, messageId) ? 'sent' : null;
      });
      let outcome: ReturnType<typeof result> = null;
      try {
        outcome = result();
      } catch (err) {
        // A template Meta does not have (yet): leave it due, the next pass tries again.
        log.warn({ bookingId: b.id, code: err instanceof CodedError ? err.code : 'error' }, 'reminder not sent');
        continue;
      }
      if (!outcome) continue;
      settled++;
      log.info({ bookingId: b.id, outcome }, 'appointment reminder');
      if (outcome === 'sent') {
        deps.audit({ userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, action: 'send', method: 'calendar.reminder', contactIds: [b.contactId], origin: 'core', outcome: 'ok' });
      }
    }
    return settled;
  }

  const loop: JobLoop = createJobLoop({ name: 'calendar reminders', logger: log, pass: remindPass, idleDelayMs: () => deps.reminderIntervalMs ?? 60_000 });

  return {
    async load() {
      refreshToken = await secrets.get(tokenAccount);
      const c = connection();
      if (refreshToken && settings().clientId) api = calendarApi(clientConfig(), refreshToken);
      else if (c.state === 'connected') storeConnection({ ...c, state: 'disconnected' });
    },
    start: () => loop.start(),
    stop: async () => {
      pending?.cancel();
      await loop.stop();
    },
    status() {
      const c = connection();
      const calendars = settings().calendars;
      const state = connecting && c.state !== 'connected' ? 'connecting' : c.state;
      return { state, scopes: c.scopes, connectedAt: c.connectedAt, problem: c.problem, bookable: state === 'connected' && calendars.length > 0, calendars };
    },
    settings,
    updateSettings(patch) {
      const next = { ...settings(), ...patch };
      if (!isTimeZone(next.rules.timeZone)) throw new CodedError('VALIDATION_FAILED', `Unknown time zone "${next.rules.timeZone.slice(0, 64)}"; use an IANA name such as Europe/Amsterdam.`);
      if (next.rules.hours.some((h) => h.to <= h.from)) throw new CodedError('VALIDATION_FAILED', 'Each opening period must end after it starts.');
      if (new Set(next.calendars.map((c) => c.id)).size !== next.calendars.length) throw new CodedError('VALIDATION_FAILED', 'Each bookable calendar may be listed once.');
      saveCalendarSettings(db, next, now());
      cachedSettings = next;
      return next;
    },
    async connect(clientId, clientSecret) {
      pending?.cancel();
      const s = settings();
      saveCalendarSettings(db, { ...s, clientId }, now());
      cachedSettings = { ...s, clientId };
      const config = { endpoints, clientId, clientSecret };
      const consent = await beginConsent(config, GOOGLE_CALENDAR_SCOPES);
      pending = consent;
      connecting = true;
      deps.emit('calendar.stateChanged', { state: 'connecting' });
      const done = consent.result.then(
        async (granted) => {
          if (pending !== consent) return;
          pending = null;
          connecting = false;
          // Replacing a grant: the old one is revoked, not left behind at Google.
          const old = refreshToken;
          await secrets.set(tokenAccount, granted.refreshToken);
          refreshToken = granted.refreshToken;
          if (old && old !== granted.refreshToken) await revokeAtGoogle(config, old).catch(() => undefined);
          setConnection({ state: 'connected', scopes: granted.scopes, connectedAt: now(), problem: null, clientSecret: clientSecret ?? null });
          api = calendarApi({ endpoints, clientId, clientSecret }, granted.refreshToken);
          log.info({ scopes: granted.scopes.length }, 'google calendar connected');
        },
        (err: unknown) => {
          if (pending !== consent) return;
          pending = null;
          connecting = false;
          log.warn({ code: err instanceof CodedError ? err.code : 'error' }, 'google calendar not connected');
          deps.emit('calendar.stateChanged', { state: connection().state });
        },
      );
      return { authorizeUrl: consent.authorizeUrl, done };
    },
    async disconnect() {
      pending?.cancel();
      connecting = false;
      const token = refreshToken ?? (await secrets.get(tokenAccount));
      if (token && settings().clientId) await revokeAtGoogle(clientConfig(), token);
      await secrets.delete(tokenAccount);
      refreshToken = null;
      api = null;
      setConnection({ state: 'disconnected', scopes: [], connectedAt: null, problem: null, clientSecret: connection().clientSecret });
      log.info('google calendar disconnected and revoked');
      return this.status();
    },
    async slots(conversationId, calendarId) {
      contactOf(conversationId);
      const s = settings();
      const chosen = calendarId ? [calendarOf(calendarId)] : s.calendars;
      const from = now();
      const to = from + BOOKING_HORIZON_DAYS * DAY_MS;
      const busy = chosen.length === 0 ? new Map() : await google((a) => a.freeBusy(chosen.map((c) => c.id), from, to));
      return {
        from,
        to,
        calendars: chosen.map((c) => {
          const b = busy.get(c.id);
          return { ...c, slots: b === undefined || b === 'notFound' ? [] : freeSlots(s.rules, b, from, to) };
        }),
      };
    },
    bookings: (conversationId) => bookingsOfContact(db, contactOf(conversationId)),
    book: (p) =>
      serial(async () => {
        const contactId = contactOf(p.conversationId);
        const cal = calendarOf(p.calendarId);
        const slot = await assertFree(cal.id, p.start);
        const reference = newReference();
        const googleEventId = newEventId();
        const text = eventText({ reference, contactId, calendarLabel: cal.label });
        await google((a) => a.insertEvent(cal.id, { id: googleEventId, ...text, start: slot.start, end: slot.end, timeZone: settings().rules.timeZone }));
        const booking = (p.commit ?? direct)(() => {
          const b = insertBooking(db, { reference, contactId, conversationId: p.conversationId, calendarId: cal.id, calendarLabel: cal.label, googleEventId, start: slot.start, end: slot.end, by: p.by, now: now() });
          changed('booking.created', b);
          return b;
        });
        return { booking, offer: offerFor('booked', booking) };
      }),
    move: (p) =>
      serial(async () => {
        const current = activeBooking(p.bookingId);
        const cal = calendarOf(p.calendarId ?? current.calendarId);
        const sameCalendar = cal.id === current.calendarId;
        const slot = await assertFree(cal.id, p.start, sameCalendar ? { start: current.start, end: current.end } : undefined);
        const tz = settings().rules.timeZone;
        let googleEventId = current.googleEventId;
        if (sameCalendar) {
          await google((a) => a.patchEvent(cal.id, current.googleEventId, { start: slot.start, end: slot.end, timeZone: tz }));
        } else {
          // Another practitioner or room: a new event there, then the old one goes.
          googleEventId = newEventId();
          const text = eventText({ reference: current.reference, contactId: current.contactId, calendarLabel: cal.label });
          await google((a) => a.insertEvent(cal.id, { id: googleEventId, ...text, start: slot.start, end: slot.end, timeZone: tz }));
          await google((a) => a.deleteEvent(current.calendarId, current.googleEventId));
        }
        const booking = (p.commit ?? direct)(() => {
          moveBooking(db, current.id, { calendarId: cal.id, calendarLabel: cal.label, googleEventId, start: slot.start, end: slot.end, now: now() });
          const b = getBooking(db, current.id)!;
          changed('booking.moved', b);
          return b;
        });
        return { booking, offer: offerFor('moved', booking) };
      }),
    cancel: (p) =>
      serial(async () => {
        const current = activeBooking(p.bookingId);
        await google((a) => a.deleteEvent(current.calendarId, current.googleEventId));
        const booking = (p.commit ?? direct)(() => {
          cancelBooking(db, current.id, now());
          const b = getBooking(db, current.id)!;
          changed('booking.cancelled', b);
          return b;
        });
        return { booking, offer: offerFor('cancelled', booking) };
      }),
    remindNow: () => loop.runOnce(),
    contactOf,
    bookingOf: (id) => getBooking(db, id),
  };
}
