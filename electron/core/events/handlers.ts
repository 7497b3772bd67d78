import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import type { Handler, Handlers } from '../rpc/dispatch';
import type { BookingEvent } from '../calendar/service';
import type { EventsService } from './service';

type EventsMethods = 'events.list' | 'events.create' | 'events.update' | 'events.delete' | 'events.deliveries' | 'events.sendTest';

/** The events slice of the RPC: admins only. */
export function createEventsHandlers(events: EventsService): Pick<Handlers, EventsMethods> {
  return {
    'events.list': () => events.list(),
    'events.create': (input, ctx) => events.create({ ...input, by: ctx.me.userId }),
    'events.update': (input) => events.update(input),
    'events.delete': ({ id }) => {
      events.remove(id);
      return { deleted: true as const };
    },
    'events.deliveries': ({ subscriptionId, limit }) => events.deliveries(subscriptionId, limit),
    'events.sendTest': ({ id }) => ({ eventId: events.sendTest(id) }),
  };
}

/** A booking change as the event subscribers see it: ids and times, no name or number. */
export function publishBooking(events: EventsService, { type, booking: b }: BookingEvent): void {
  events.publish({
    type,
    conversationId: b.conversationId,
    contactId: b.contactId,
    data: { bookingId: b.id, reference: b.reference, conversationId: b.conversationId, contactId: b.contactId, calendarId: b.calendarId, start: new Date(b.start).toISOString(), end: new Date(b.end).toISOString(), status: b.status },
  });
}

/**
 * Assignments, resolutions, desk opt-outs and erasures happen in handlers other features own; they are wrapped
 * here so a subscriber hears of them, without those features knowing. The event is queued in the call's own
 * commit (a synchronous handler's transaction; an asynchronous one's closing commit with its audit entry), so
 * it exists exactly when the change does.
 */
export function observeHandlers(handlers: Handlers, events: EventsService, db: Database): void {
  const wrap = <M extends keyof Handlers>(name: M, after: (params: Parameters<Handlers[M]>[0], before: number | null) => void, before?: (params: Parameters<Handlers[M]>[0]) => number | null) => {
    const inner = handlers[name] as Handler<M>;
    handlers[name] = ((params: Parameters<Handler<M>>[0], ctx: Parameters<Handler<M>>[1]) => {
      const b = before ? before(params) : null;
      const out = inner(params, ctx);
      if (out instanceof Promise) return out.then((v) => (ctx.commitWithAudit(() => after(params, b)), v));
      after(params, b);
      return out;
    }) as Handlers[M];
  };
  const contactOf = (conversationId: number): number | null =>
    (stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined)?.contact_id ?? null;
  wrap('conversations.assign', ({ conversationId }) => {
    const row = stmt(db, 'SELECT assigned_user_id FROM conversations WHERE id = ?').get(conversationId) as { assigned_user_id: string | null } | undefined;
    events.publish({ type: 'conversation.assigned', conversationId, contactId: contactOf(conversationId), data: { conversationId, assignedTo: row?.assigned_user_id ?? null } });
  });
  wrap('conversations.setStatus', ({ conversationId, status }) => {
    if (status === 'resolved') events.publish({ type: 'conversation.resolved', conversationId, contactId: contactOf(conversationId), data: { conversationId } });
  });
  // An opt-out (recorded at the desk, by keyword or by Meta's signal) arrives as `privacy.consentChanged`, see `observe`.
  wrap('privacy.eraseContact', ({ contactId }) => {
    events.forgetContact(contactId);
    events.publish({ type: 'contact.erased', conversationId: null, contactId, data: { contactId } });
  });
}
