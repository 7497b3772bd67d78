import type { Booking, CalendarSettings, CalendarState } from '../../../shared/rpc';
import { CalendarSettingsSchema } from '../../../shared/rpc';
import { getSetting, setSetting } from '../db/repo/settings';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

const SETTINGS_KEY = 'calendar.settings';
const CONNECTION_KEY = 'calendar.connection';

export function defaultCalendarSettings(): CalendarSettings {
  const weekdays = [1, 2, 3, 4, 5].map((day) => ({ day, from: '09:00', to: '17:00' }));
  return {
    clientId: null,
    calendars: [],
    rules: { slotMinutes: 30, bufferMinutes: 0, hours: weekdays, timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'Europe/Amsterdam' },
    titleTemplate: 'Appointment {initials} · {reference}',
    descriptionTemplate: 'Booked from Clinic Inbox. Booking reference {reference}.',
    reminder: { enabled: true, minutesBefore: 24 * 60, template: null },
    messages: {
      locale: 'en-GB',
      booked: 'Your appointment is booked for {when} ({calendar}). Your reference is {reference}.',
      moved: 'Your appointment has been moved to {when} ({calendar}). Your reference is {reference}.',
      cancelled: 'Your appointment on {when} has been cancelled. Reference {reference}.',
    },
    confirmation: { booked: null, moved: null, cancelled: null },
  };
}

/** Stored settings over the defaults; a stored value that no longer parses falls back to the defaults. */
export function loadCalendarSettings(db: Database): CalendarSettings {
  const raw = getSetting(db, SETTINGS_KEY);
  const base = defaultCalendarSettings();
  if (!raw) return base;
  try {
    const parsed = CalendarSettingsSchema.partial().safeParse(JSON.parse(raw));
    return parsed.success ? { ...base, ...parsed.data } : base;
  } catch {
    return base;
  }
}

export function saveCalendarSettings(db: Database, settings: CalendarSettings, now: number): void {
  setSetting(db, SETTINGS_KEY, JSON.stringify(settings), now);
}

export interface ConnectionRecord {
  state: CalendarState;
  scopes: string[];
  connectedAt: number | null;
  problem: string | null;
  /** An installed app's client secret is not confidential (Google says so); the refresh token is in the keychain. */
  clientSecret: string | null;
}

export function loadConnection(db: Database): ConnectionRecord {
  const raw = getSetting(db, CONNECTION_KEY);
  const none: ConnectionRecord = { state: 'disconnected', scopes: [], connectedAt: null, problem: null, clientSecret: null };
  if (!raw) return none;
  try {
    return { ...none, ...(JSON.parse(raw) as Partial<ConnectionRecord>) };
  } catch {
    return none;
  }
}

export function saveConnection(db: Database, record: ConnectionRecord, now: number): void {
  setSetting(db, CONNECTION_KEY, JSON.stringify(record), now);
}

interface BookingRow {
  id: number;
  reference: string;
  contact_id: number;
  conversation_id: number;
  calendar_id: string;
  calendar_label: string;
  google_event_id: string;
  start_at: number;
  end_at: number;
  status: 'booked' | 'cancelled';
  reminder_state: string | null;
  reminder_at: number | null;
  created_at: number;
}

export interface StoredBooking extends Booking {
  googleEventId: string;
}

const toBooking = (r: BookingRow): StoredBooking => ({
  id: r.id,
  reference: r.reference,
  contactId: r.contact_id,
  conversationId: r.conversation_id,
  calendarId: r.calendar_id,
  calendarLabel: r.calendar_label,
  googleEventId: r.google_event_id,
  start: r.start_at,
  end: r.end_at,
  status: r.status,
  reminderSentAt: r.reminder_state === 'sent' ? r.reminder_at : null,
  createdAt: r.created_at,
});

export function insertBooking(
  db: Database,
  b: { reference: string; contactId: number; conversationId: number; calendarId: string; calendarLabel: string; googleEventId: string; start: number; end: number; by: string; now: number },
): StoredBooking {
  const id = stmt(
    db,
    `INSERT INTO calendar_bookings (reference, contact_id, conversation_id, calendar_id, calendar_label, google_event_id, start_at, end_at, status, created_by, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'booked', ?, ?, ?)`,
  ).run(b.reference, b.contactId, b.conversationId, b.calendarId, b.calendarLabel, b.googleEventId, b.start, b.end, b.by, b.now, b.now).lastInsertRowid;
  return getBooking(db, Number(id))!;
}

export function getBooking(db: Database, id: number): StoredBooking | null {
  const r = stmt(db, 'SELECT * FROM calendar_bookings WHERE id = ?').get(id) as BookingRow | undefined;
  return r ? toBooking(r) : null;
}

export function bookingsOfContact(db: Database, contactId: number): StoredBooking[] {
  return (stmt(db, 'SELECT * FROM calendar_bookings WHERE contact_id = ? ORDER BY start_at DESC LIMIT 100').all(contactId) as BookingRow[]).map(toBooking);
}

/** A move keeps the row (and its reference); the reminder is owed again for the new time. */
export function moveBooking(db: Database, id: number, m: { calendarId: string; calendarLabel: string; googleEventId: string; start: number; end: number; now: number }): void {
  stmt(
    db,
    `UPDATE calendar_bookings SET calendar_id = ?, calendar_label = ?, google_event_id = ?, start_at = ?, end_at = ?, reminder_state = NULL, reminder_at = NULL, reminder_message_id = NULL, updated_at = ? WHERE id = ?`,
  ).run(m.calendarId, m.calendarLabel, m.googleEventId, m.start, m.end, m.now, id);
}

export function cancelBooking(db: Database, id: number, now: number): void {
  stmt(db, `UPDATE calendar_bookings SET status = 'cancelled', updated_at = ? WHERE id = ?`).run(now, id);
}

/** Bookings whose reminder falls due by `now` and has not been settled yet, oldest first. */
export function dueReminders(db: Database, dueBy: number, limit = 100): StoredBooking[] {
  return (
    stmt(db, `SELECT * FROM calendar_bookings WHERE status = 'booked' AND reminder_state IS NULL AND start_at <= ? ORDER BY start_at LIMIT ?`).all(dueBy, limit) as BookingRow[]
  ).map(toBooking);
}

export function settleReminder(db: Database, id: number, state: 'sent' | 'opted_out' | 'passed', at: number, messageId: number | null): boolean {
  return stmt(db, `UPDATE calendar_bookings SET reminder_state = ?, reminder_at = ?, reminder_message_id = ? WHERE id = ? AND reminder_state IS NULL`).run(state, at, messageId, id).changes === 1;
}

/** The patient's initials for the event title: letters only, never the number. */
export function contactInitials(db: Database, contactId: number): string {
  const r = stmt(db, 'SELECT display_name, profile_name FROM contacts WHERE id = ?').get(contactId) as { display_name: string | null; profile_name: string | null } | undefined;
  const name = (r?.display_name || r?.profile_name || '').trim();
  const letters = name
    .split(/\s+/)
    .map((w) => [...w].find((ch) => /\p{L}/u.test(ch)) ?? '')
    .filter(Boolean)
    .slice(0, 3)
    .join('')
    .toUpperCase();
  return letters || '?';
}
