import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import type { Booking, BookingOffer, Slot } from '../../../shared/rpc';
import { useDataAccess } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { useBookingStrings } from './strings';
import './booking.css';

export const bookingKeys = {
  status: ['calendar', 'status'] as const,
  bookings: (conversationId: number) => ['calendar', 'bookings', conversationId] as const,
  slots: (conversationId: number, calendarId: string) => ['calendar', 'slots', conversationId, calendarId] as const,
};

/** Google's state for every window: pushed changes refetch it. */
export function useCalendarStatus() {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(
    () =>
      rpc.on((event) => {
        if (event === 'calendar.stateChanged') void qc.invalidateQueries({ queryKey: ['calendar'] });
      }),
    [rpc, qc],
  );
  return useQuery({ queryKey: bookingKeys.status, queryFn: () => rpc.call('calendar.status', {}), enabled: useDataAccess() });
}

function useFormat() {
  const { lang } = useI18n();
  return useMemo(() => {
    const day = new Intl.DateTimeFormat(lang, { weekday: 'long', day: 'numeric', month: 'long' });
    const time = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' });
    const full = new Intl.DateTimeFormat(lang, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
    return { day: (t: number) => day.format(t), time: (t: number) => time.format(t), full: (t: number) => full.format(t) };
  }, [lang]);
}

/** The message to send after a change, sent only when the receptionist says so. */
function Offer({ conversationId, offer, onDone }: { conversationId: number; offer: BookingOffer; onDone(): void }): React.JSX.Element {
  const b = useBookingStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [text, setText] = useState(offer.kind === 'text' ? offer.text : '');
  const send = useMutation({
    mutationFn: async () => {
      if (offer.kind === 'text') await rpc.call('messages.send', { conversationId, text });
      else if (offer.kind === 'template') await rpc.call('messages.sendTemplate', { conversationId, name: offer.name, language: offer.language, parameters: offer.parameters });
    },
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['messages', conversationId] });
      onDone();
    },
  });
  return (
    <div className="booking-offer" role="group" aria-label={b.offerTitle} data-testid="booking-offer">
      <h4>{b.offerTitle}</h4>
      {offer.kind === 'text' ? (
        <>
          <label htmlFor="booking-offer-text">{b.offerText}</label>
          <textarea id="booking-offer-text" value={text} onChange={(e) => setText(e.target.value)} rows={3} maxLength={4096} />
        </>
      ) : offer.kind === 'template' ? (
        <p>{b.offerTemplate(offer.name)}</p>
      ) : (
        <p>{offer.reason === 'opted_out' ? b.offerOptedOut : b.offerNoTemplate}</p>
      )}
      {send.isError ? (
        <p className="error" role="alert">
          {errorText(send.error)}
        </p>
      ) : null}
      <div className="row-actions">
        {offer.kind !== 'none' ? (
          <button type="button" disabled={send.isPending || (offer.kind === 'text' && text.trim() === '')} onClick={() => send.mutate()}>
            {b.send}
          </button>
        ) : null}
        <button type="button" className="secondary" onClick={onDone}>
          {offer.kind === 'none' ? b.close : b.dontSend}
        </button>
      </div>
    </div>
  );
}

function SlotPicker({ slots, onPick, disabled }: { slots: Slot[]; onPick(slot: Slot): void; disabled: boolean }): React.JSX.Element {
  const f = useFormat();
  const b = useBookingStrings();
  const days = useMemo(() => {
    const out: { label: string; slots: Slot[] }[] = [];
    for (const s of slots) {
      const label = f.day(s.start);
      if (out.at(-1)?.label !== label) out.push({ label, slots: [] });
      out.at(-1)!.slots.push(s);
    }
    return out;
  }, [slots, f]);
  if (slots.length === 0) return <p className="muted">{b.noSlots}</p>;
  return (
    <div className="slot-days">
      {days.map((d) => (
        <div key={d.label} className="slot-day" role="group" aria-label={d.label}>
          <h5>{d.label}</h5>
          <div className="slot-list">
            {d.slots.map((s) => (
              <button key={s.start} type="button" className="secondary slot" disabled={disabled} onClick={() => onPick(s)} data-start={s.start}>
                {f.time(s.start)}
              </button>
            ))}
          </div>
        </div>
      ))}
    </div>
  );
}

/** Book, move and cancel this patient's appointments; the panel that the thread header's "Book" opens. */
export function BookPanel({ conversationId, onClose }: { conversationId: number; onClose(): void }): React.JSX.Element {
  const b = useBookingStrings();
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const f = useFormat();
  const status = useCalendarStatus();
  const calendars = status.data?.calendars ?? [];
  const [calendarId, setCalendarId] = useState<string>('');
  const chosen = calendarId || calendars[0]?.id || '';
  const [moving, setMoving] = useState<Booking | null>(null);
  const [confirmCancel, setConfirmCancel] = useState<Booking | null>(null);
  const [result, setResult] = useState<{ note: string; offer: BookingOffer } | null>(null);
  const ready = status.data?.bookable === true;

  const bookings = useQuery({ queryKey: bookingKeys.bookings(conversationId), queryFn: () => rpc.call('calendar.bookings', { conversationId }), enabled: ready });
  const slots = useQuery({
    queryKey: bookingKeys.slots(conversationId, chosen),
    queryFn: () => rpc.call('calendar.slots', { conversationId, calendarId: chosen }),
    enabled: ready && chosen !== '',
    // Free slots change under the desk (other desks, Google itself): asked again each time the panel opens.
    staleTime: 0,
    refetchOnMount: 'always',
  });

  const change = useMutation({
    mutationFn: async (action: { kind: 'book' | 'move'; slot: Slot } | { kind: 'cancel'; booking: Booking }) => {
      if (action.kind === 'cancel') return { kind: action.kind, ...(await rpc.call('calendar.cancel', { bookingId: action.booking.id })) };
      if (action.kind === 'book') return { kind: action.kind, ...(await rpc.call('calendar.book', { conversationId, calendarId: chosen, start: action.slot.start })) };
      return { kind: action.kind, ...(await rpc.call('calendar.move', { bookingId: moving!.id, calendarId: chosen, start: action.slot.start })) };
    },
    onSuccess: ({ kind, booking, offer }) => {
      const when = f.full(booking.start);
      setResult({ note: kind === 'book' ? b.booked(when, booking.reference) : kind === 'move' ? b.moved(when) : b.cancelledDone, offer });
      setMoving(null);
      setConfirmCancel(null);
    },
    onSettled: () => void qc.invalidateQueries({ queryKey: ['calendar'] }),
  });
  const taken = change.error && (change.error as { code?: string }).code === 'SLOT_TAKEN';

  let body: React.JSX.Element;
  if (status.isPending) body = <p className="state">{t.loading}</p>;
  else if (status.data?.state === 'reconnect_needed') body = <p role="alert">{b.reconnectNeeded}</p>;
  else if (!ready) body = <p>{b.notConnected}</p>;
  else
    body = (
      <>
        {result ? (
          <>
            <p role="status" className="booking-note">
              {result.note}
            </p>
            <Offer conversationId={conversationId} offer={result.offer} onDone={() => setResult(null)} />
          </>
        ) : null}
        <h4>{b.bookings}</h4>
        {bookings.data && bookings.data.length > 0 ? (
          <ul className="booking-list">
            {bookings.data.map((x) => (
              <li key={x.id} data-testid="booking" data-status={x.status}>
                <span>
                  {f.full(x.start)} · {x.calendarLabel} · <code>{x.reference}</code>
                  {x.status === 'cancelled' ? ` · ${b.cancelled}` : x.reminderSentAt ? ` · ${b.reminderSent}` : ''}
                </span>
                {x.status === 'booked' && x.start > Date.now() ? (
                  <span className="row-actions">
                    <button type="button" className="secondary" onClick={() => setMoving(x)}>
                      {b.move}
                    </button>
                    <button type="button" className="secondary" onClick={() => setConfirmCancel(x)}>
                      {b.cancelBooking}
                    </button>
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">{b.noBookings}</p>
        )}
        {confirmCancel ? (
          <div role="alertdialog" aria-label={b.cancelBooking} className="booking-confirm">
            <p>{b.confirmCancel(f.full(confirmCancel.start))}</p>
            <button type="button" disabled={change.isPending} onClick={() => change.mutate({ kind: 'cancel', booking: confirmCancel })}>
              {b.yesCancel}
            </button>
            <button type="button" className="secondary" onClick={() => setConfirmCancel(null)}>
              {b.keep}
            </button>
          </div>
        ) : null}
        {moving ? (
          <p className="booking-moving">
            {b.moving(f.full(moving.start))}{' '}
            <button type="button" className="secondary" onClick={() => setMoving(null)}>
              {b.stopMoving}
            </button>
          </p>
        ) : null}
        {calendars.length > 1 ? (
          <label className="booking-calendar">
            {b.calendar}{' '}
            <select value={chosen} onChange={(e) => setCalendarId(e.target.value)}>
              {calendars.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.label}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <h4>{b.freeSlots}</h4>
        {change.isError ? (
          <p className="error" role="alert">
            {taken ? b.slotTaken : errorText(change.error)}
          </p>
        ) : null}
        {slots.isPending ? (
          <p className="state">{b.loadingSlots}</p>
        ) : slots.isError ? (
          <p className="error" role="alert">
            {errorText(slots.error)}
          </p>
        ) : (
          <SlotPicker slots={slots.data.calendars[0]?.slots ?? []} disabled={change.isPending} onPick={(slot) => change.mutate({ kind: moving ? 'move' : 'book', slot })} />
        )}
      </>
    );

  return (
    <section className="book-panel" aria-labelledby="book-panel-title" data-testid="book-panel">
      <header>
        <h3 id="book-panel-title">{b.panelTitle}</h3>
        <button type="button" className="secondary" onClick={onClose}>
          {b.close}
        </button>
      </header>
      {body}
    </section>
  );
}

/** The thread header's "Book" button and the panel it opens. */
export function BookButton({ conversationId }: { conversationId: number }): React.JSX.Element {
  const b = useBookingStrings();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [conversationId]);
  return (
    <>
      <button type="button" className="secondary" aria-expanded={open} aria-controls="book-panel" onClick={() => setOpen((o) => !o)}>
        {b.book}
      </button>
      {open ? (
        <div id="book-panel" className="book-panel-anchor">
          <BookPanel conversationId={conversationId} onClose={() => setOpen(false)} />
        </div>
      ) : null}
    </>
  );
}
