import { z } from 'zod';
import { Id, method } from './common';

/**
 * Booking appointments from a conversation through Google Calendar. Admins connect Google (OAuth
 * for installed apps: loopback redirect, PKCE S256) and choose the bookable calendars and slot
 * rules; receptionists see free slots, book, move and cancel, and are offered the message that
 * tells the patient.
 */

/**
 * The narrowest Google scopes that do the job (see electron/core/calendar/README.md):
 * `calendar.freebusy` reads availability only (no event titles), `calendar.events.owned` creates,
 * changes and deletes events only on calendars the connected account owns.
 */
export const GOOGLE_CALENDAR_SCOPES = [
  'https://www.googleapis.com/auth/calendar.freebusy',
  'https://www.googleapis.com/auth/calendar.events.owned',
] as const;

/** How many days ahead "Book" offers slots. */
export const BOOKING_HORIZON_DAYS = 14;

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time as HH:MM');

/** `reconnect_needed`: Google revoked the grant or it expired; the admin banner asks to reconnect. */
export const CalendarStateSchema = z.enum(['disconnected', 'connecting', 'connected', 'reconnect_needed']);
export type CalendarState = z.infer<typeof CalendarStateSchema>;

export const BookableCalendarSchema = z.object({
  /** Google's calendar id (`primary`, or `…@group.calendar.google.com`). */
  id: z.string().trim().min(1).max(200),
  /** What the desk shows: a practitioner or a room. */
  label: z.string().trim().min(1).max(80),
});
export type BookableCalendar = z.infer<typeof BookableCalendarSchema>;

export const BookingHoursSchema = z.object({
  /** 0 = Sunday … 6 = Saturday. */
  day: z.number().int().min(0).max(6),
  from: HHMM,
  to: HHMM,
});
export const SlotRulesSchema = z.object({
  slotMinutes: z.number().int().min(5).max(480),
  /** Free time kept before and after every busy period and booking. */
  bufferMinutes: z.number().int().min(0).max(120),
  hours: z.array(BookingHoursSchema).max(21),
  /** IANA time zone the opening hours are in (`Europe/Amsterdam`). */
  timeZone: z.string().min(1).max(64),
});
export type SlotRules = z.infer<typeof SlotRulesSchema>;

export const TemplateRefSchema = z.object({ name: z.string().min(1).max(512), language: z.string().min(2).max(15) });
export type TemplateRef = z.infer<typeof TemplateRefSchema>;

export const CalendarSettingsSchema = z.object({
  /** The OAuth client of type "Desktop app" in the clinic's Google Cloud project. */
  clientId: z.string().max(300).nullable(),
  calendars: z.array(BookableCalendarSchema).max(30),
  rules: SlotRulesSchema,
  /**
   * The event's title and description. Placeholders: `{initials}`, `{reference}`, `{calendar}`.
   * There is deliberately none for the phone number, the name or the patient's messages.
   */
  titleTemplate: z.string().trim().min(1).max(200),
  descriptionTemplate: z.string().max(1000),
  reminder: z.object({
    enabled: z.boolean(),
    minutesBefore: z.number().int().min(15).max(7 * 24 * 60),
    /** Its parameters, if any: the appointment's date and time, then the booking reference. */
    template: TemplateRefSchema.nullable(),
  }),
  /**
   * Free text offered inside the 24-hour window. Placeholders: `{when}` (date and time in the
   * clinic's time zone), `{reference}`, `{calendar}`. `locale` formats `{when}` (`nl-NL`).
   */
  messages: z.object({
    locale: z.string().min(2).max(35),
    booked: z.string().trim().min(1).max(1000),
    moved: z.string().trim().min(1).max(1000),
    cancelled: z.string().trim().min(1).max(1000),
  }),
  /** Sent outside the 24-hour window, where WhatsApp allows only templates (same parameters). */
  confirmation: z.object({ booked: TemplateRefSchema.nullable(), moved: TemplateRefSchema.nullable(), cancelled: TemplateRefSchema.nullable() }),
});
export type CalendarSettings = z.infer<typeof CalendarSettingsSchema>;

export const CalendarStatusSchema = z.object({
  state: CalendarStateSchema,
  scopes: z.array(z.string()),
  connectedAt: z.number().int().nullable(),
  /** Why a reconnect is needed (`invalid_grant`), in words for the banner; never a token. */
  problem: z.string().nullable(),
  /** Whether the desk can book: connected and at least one bookable calendar. */
  bookable: z.boolean(),
  calendars: z.array(BookableCalendarSchema),
});
export type CalendarStatus = z.infer<typeof CalendarStatusSchema>;

export const SlotSchema = z.object({ start: z.number().int(), end: z.number().int() });
export type Slot = z.infer<typeof SlotSchema>;

export const BookingStatusSchema = z.enum(['booked', 'cancelled']);
export const BookingSchema = z.object({
  id: Id,
  /** Short reference the patient can quote (`B-7K2Q9M`); also in the event title by default. */
  reference: z.string(),
  contactId: Id,
  conversationId: Id,
  calendarId: z.string(),
  calendarLabel: z.string(),
  start: z.number().int(),
  end: z.number().int(),
  status: BookingStatusSchema,
  reminderSentAt: z.number().int().nullable(),
  createdAt: z.number().int(),
});
export type Booking = z.infer<typeof BookingSchema>;

/** The message the desk is offered after a change (never sent without the receptionist). */
export const BookingOfferSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('text'), text: z.string() }),
  z.object({ kind: z.literal('template'), name: z.string(), language: z.string(), parameters: z.array(z.string()) }),
  /** Nothing can be sent: outside the window with no template chosen, or the patient opted out. */
  z.object({ kind: z.literal('none'), reason: z.enum(['no_template', 'opted_out']) }),
]);
export type BookingOffer = z.infer<typeof BookingOfferSchema>;

const BookingChangeSchema = z.object({ booking: BookingSchema, offer: BookingOfferSchema });

export const calendarMethods = {
  'calendar.status': method({ input: z.object({}), output: CalendarStatusSchema, roles: ['admin', 'receptionist'] }),
  'calendar.getSettings': method({ input: z.object({}), output: CalendarSettingsSchema, roles: ['admin'] }),
  'calendar.updateSettings': method({ input: CalendarSettingsSchema.partial(), output: CalendarSettingsSchema, roles: ['admin'], audit: 'configure' }),
  /**
   * Starts the OAuth flow: the core listens on 127.0.0.1 for Google's redirect and answers the
   * address to open in the system browser. The outcome arrives as `calendar.stateChanged`.
   */
  'calendar.connect': method({
    input: z.object({ clientId: z.string().trim().min(1).max(300), clientSecret: z.string().trim().max(300).optional() }),
    output: z.object({ authorizeUrl: z.string() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  /** Revokes the grant at Google at once and deletes the refresh token from the keychain. */
  'calendar.disconnect': method({ input: z.object({}), output: CalendarStatusSchema, roles: ['admin'], audit: 'revoke' }),
  'calendar.slots': method({
    input: z.object({ conversationId: Id, calendarId: z.string().min(1).max(200).optional() }),
    output: z.object({ from: z.number().int(), to: z.number().int(), calendars: z.array(BookableCalendarSchema.extend({ slots: z.array(SlotSchema) })) }),
    roles: ['receptionist'],
    audit: 'read',
  }),
  'calendar.bookings': method({ input: z.object({ conversationId: Id }), output: z.array(BookingSchema), roles: ['receptionist'], audit: 'read' }),
  /** Free/busy is asked again first: a slot taken meanwhile is refused with SLOT_TAKEN. */
  'calendar.book': method({
    input: z.object({ conversationId: Id, calendarId: z.string().min(1).max(200), start: z.number().int() }),
    output: BookingChangeSchema,
    roles: ['receptionist'],
    audit: 'create',
  }),
  'calendar.move': method({
    input: z.object({ bookingId: Id, calendarId: z.string().min(1).max(200).optional(), start: z.number().int() }),
    output: BookingChangeSchema,
    roles: ['receptionist'],
    audit: 'update',
  }),
  'calendar.cancel': method({ input: z.object({ bookingId: Id }), output: BookingChangeSchema, roles: ['receptionist'], audit: 'delete' }),
} as const;

export const calendarEvents = {
  /** `calendar.status` changed (connected, disconnected, a grant Google revoked). */
  'calendar.stateChanged': z.object({ state: CalendarStateSchema }),
} as const;
