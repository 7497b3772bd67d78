import type { Handlers } from '../rpc/dispatch';
import type { CalendarService } from './service';

type CalendarMethods =
  | 'calendar.status'
  | 'calendar.getSettings'
  | 'calendar.updateSettings'
  | 'calendar.connect'
  | 'calendar.disconnect'
  | 'calendar.slots'
  | 'calendar.bookings'
  | 'calendar.book'
  | 'calendar.move'
  | 'calendar.cancel';

/** The booking slice of the RPC: admins connect and configure, receptionists book for a patient. */
export function createCalendarHandlers(calendar: CalendarService): Pick<Handlers, CalendarMethods> {
  const forBooking = (bookingId: number, ctx: { concerns(id: number): void }) => {
    const b = calendar.bookingOf(bookingId);
    if (b) ctx.concerns(b.contactId);
  };
  return {
    'calendar.status': () => calendar.status(),
    'calendar.getSettings': () => calendar.settings(),
    'calendar.updateSettings': (patch) => calendar.updateSettings(patch),
    'calendar.connect': async ({ clientId, clientSecret }) => ({ authorizeUrl: (await calendar.connect(clientId, clientSecret)).authorizeUrl }),
    'calendar.disconnect': () => calendar.disconnect(),
    'calendar.slots': ({ conversationId, calendarId }, ctx) => {
      ctx.concerns(calendar.contactOf(conversationId));
      return calendar.slots(conversationId, calendarId);
    },
    'calendar.bookings': ({ conversationId }, ctx) => {
      ctx.concerns(calendar.contactOf(conversationId));
      return calendar.bookings(conversationId);
    },
    'calendar.book': ({ conversationId, calendarId, start }, ctx) => {
      ctx.concerns(calendar.contactOf(conversationId));
      return calendar.book({ conversationId, calendarId, start, by: ctx.me.userId, commit: ctx.commitWithAudit });
    },
    'calendar.move': (p, ctx) => {
      forBooking(p.bookingId, ctx);
      return calendar.move({ ...p, commit: ctx.commitWithAudit });
    },
    'calendar.cancel': (p, ctx) => {
      forBooking(p.bookingId, ctx);
      return calendar.cancel({ ...p, commit: ctx.commitWithAudit });
    },
  };
}
