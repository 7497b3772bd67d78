import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { CalendarSettings, TemplateRef } from '../../../shared/rpc';
import { useDataAccess } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { useCalendarStatus } from './BookPanel';
import { EventsSettings } from './EventsSettings';
import { useBookingStrings } from './strings';
import './booking.css';

/** Shown to admins across the app while Google refuses the grant: never a silent failure. */
export function CalendarBanner({ onOpen }: { onOpen?: () => void }): React.JSX.Element | null {
  const b = useBookingStrings();
  const status = useCalendarStatus();
  if (status.data?.state !== 'reconnect_needed') return null;
  return (
    <div className="banner warning" role="alert" data-testid="calendar-banner">
      <span>{b.banner}</span>
      {onOpen ? (
        <button type="button" className="secondary" onClick={onOpen}>
          {b.openSettings}
        </button>
      ) : null}
    </div>
  );
}

function TemplateFields({ id, value, onChange }: { id: string; value: TemplateRef | null; onChange(v: TemplateRef | null): void }): React.JSX.Element {
  const b = useBookingStrings();
  const [name, setName] = useState(value?.name ?? '');
  const [language, setLanguage] = useState(value?.language ?? '');
  const push = (n: string, l: string) => onChange(n.trim() && l.trim().length >= 2 ? { name: n.trim(), language: l.trim() } : null);
  return (
    <span className="template-fields">
      <label htmlFor={`${id}-name`}>{b.templateName}</label>
      <input id={`${id}-name`} value={name} onChange={(e) => (setName(e.target.value), push(e.target.value, language))} />
      <label htmlFor={`${id}-lang`}>{b.templateLanguage}</label>
      <input id={`${id}-lang`} value={language} size={6} onChange={(e) => (setLanguage(e.target.value), push(name, e.target.value))} />
    </span>
  );
}

function GoogleConnection(): React.JSX.Element {
  const b = useBookingStrings();
  const { errorText, lang } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const status = useCalendarStatus();
  const settings = useQuery({ queryKey: ['calendar', 'settings'], queryFn: () => rpc.call('calendar.getSettings', {}), enabled: useDataAccess() });
  const [clientId, setClientId] = useState('');
  const [clientSecret, setClientSecret] = useState('');
  const [opened, setOpened] = useState<string | null>(null);
  useEffect(() => {
    if (settings.data?.clientId) setClientId((c) => c || settings.data.clientId!);
  }, [settings.data]);
  useEffect(() => {
    if (status.data?.state === 'connected') setOpened(null);
  }, [status.data?.state]);
  const connect = useMutation({
    mutationFn: () => rpc.call('calendar.connect', { clientId, ...(clientSecret ? { clientSecret } : {}) }),
    onSuccess: ({ authorizeUrl }) => {
      setOpened(authorizeUrl);
      // The system browser in Electron (the shell's external-link allowlist), a new tab in the web harness.
      window.open(authorizeUrl, '_blank', 'noopener');
      void qc.invalidateQueries({ queryKey: ['calendar'] });
    },
  });
  const disconnect = useMutation({ mutationFn: () => rpc.call('calendar.disconnect', {}), onSettled: () => void qc.invalidateQueries({ queryKey: ['calendar'] }) });
  const state = status.data?.state ?? 'disconnected';
  return (
    <div data-testid="google-connection">
      <p className="help">{b.googleIntro}</p>
      <p role="status" data-testid="calendar-state" data-state={state}>
        <strong>{b[`state_${state}`]}</strong>
        {state === 'connected' && status.data?.connectedAt ? ` ${b.connectedSince(new Date(status.data.connectedAt).toLocaleString(lang))}` : ''}
      </p>
      {state === 'reconnect_needed' ? <CalendarBanner /> : null}
      {state !== 'connected' ? (
        <form
          className="stack-form"
          onSubmit={(e) => {
            e.preventDefault();
            connect.mutate();
          }}
        >
          <label htmlFor="google-client-id">{b.clientId}</label>
          <input id="google-client-id" value={clientId} onChange={(e) => setClientId(e.target.value)} required aria-describedby="google-client-id-help" />
          <span id="google-client-id-help" className="help">
            {b.clientIdHelp}
          </span>
          <label htmlFor="google-client-secret">{b.clientSecret}</label>
          <input id="google-client-secret" value={clientSecret} onChange={(e) => setClientSecret(e.target.value)} autoComplete="off" />
          <button type="submit" disabled={connect.isPending || clientId.trim() === ''}>
            {state === 'reconnect_needed' ? b.reconnect : b.connect}
          </button>
        </form>
      ) : (
        <p>
          <button type="button" className="secondary" disabled={disconnect.isPending} onClick={() => disconnect.mutate()} aria-describedby="google-disconnect-help">
            {b.disconnect}
          </button>{' '}
          <span id="google-disconnect-help" className="help">
            {b.disconnectHelp}
          </span>
        </p>
      )}
      {opened && state !== 'connected' ? (
        <p className="help">
          {b.openedInBrowser}{' '}
          <a href={opened} target="_blank" rel="noopener noreferrer">
            {b.openAgain}
          </a>
        </p>
      ) : null}
      {connect.isError || disconnect.isError ? (
        <p className="error" role="alert">
          {errorText(connect.error ?? disconnect.error)}
        </p>
      ) : null}
      {settings.data ? <BookingRules key={JSON.stringify(settings.data)} initial={settings.data} /> : null}
    </div>
  );
}

function BookingRules({ initial }: { initial: CalendarSettings }): React.JSX.Element {
  const b = useBookingStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [draft, setDraft] = useState<CalendarSettings>(initial);
  const first = initial.rules.hours[0];
  const [hours, setHours] = useState({ from: first?.from ?? '09:00', to: first?.to ?? '17:00', days: new Set(initial.rules.hours.map((h) => h.day)) });
  const save = useMutation({
    mutationFn: () => {
      const { clientId: _clientId, ...rest } = draft;
      void _clientId;
      return rpc.call('calendar.updateSettings', { ...rest, rules: { ...draft.rules, hours: [...hours.days].sort().map((day) => ({ day, from: hours.from, to: hours.to })) } });
    },
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['calendar'] }),
  });
  const set = <K extends keyof CalendarSettings>(k: K, v: CalendarSettings[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const rules = (patch: Partial<CalendarSettings['rules']>) => set('rules', { ...draft.rules, ...patch });
  return (
    <form
      className="stack-form booking-rules"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <fieldset>
        <legend>{b.bookable}</legend>
        <p className="help">{b.bookableHelp}</p>
        {draft.calendars.map((c, i) => (
          <div key={i} className="calendar-row">
            <label htmlFor={`cal-id-${i}`}>{b.calendarId}</label>
            <input id={`cal-id-${i}`} value={c.id} onChange={(e) => set('calendars', draft.calendars.map((x, j) => (j === i ? { ...x, id: e.target.value } : x)))} />
            <label htmlFor={`cal-label-${i}`}>{b.calendarLabel}</label>
            <input id={`cal-label-${i}`} value={c.label} onChange={(e) => set('calendars', draft.calendars.map((x, j) => (j === i ? { ...x, label: e.target.value } : x)))} />
            <button type="button" className="secondary" onClick={() => set('calendars', draft.calendars.filter((_, j) => j !== i))}>
              {b.remove}
            </button>
          </div>
        ))}
        <button type="button" className="secondary" onClick={() => set('calendars', [...draft.calendars, { id: draft.calendars.length === 0 ? 'primary' : '', label: '' }])}>
          {b.addCalendar}
        </button>
      </fieldset>
      <fieldset>
        <legend>{b.rules}</legend>
        <label htmlFor="slot-minutes">{b.slotMinutes}</label>
        <input id="slot-minutes" type="number" min={5} max={480} value={draft.rules.slotMinutes} onChange={(e) => rules({ slotMinutes: Number(e.target.value) })} />
        <label htmlFor="buffer-minutes">{b.bufferMinutes}</label>
        <input id="buffer-minutes" type="number" min={0} max={120} value={draft.rules.bufferMinutes} onChange={(e) => rules({ bufferMinutes: Number(e.target.value) })} />
        <label htmlFor="time-zone">{b.timeZone}</label>
        <input id="time-zone" value={draft.rules.timeZone} onChange={(e) => rules({ timeZone: e.target.value })} />
        <fieldset className="opening-hours">
          <legend>{b.openingHours}</legend>
          {b.weekdays.map((name, day) => (
            <label key={day} className="checkbox">
              <input
                type="checkbox"
                checked={hours.days.has(day)}
                onChange={(e) => {
                  const days = new Set(hours.days);
                  if (e.target.checked) days.add(day);
                  else days.delete(day);
                  setHours({ ...hours, days });
                }}
              />
              {name}
            </label>
          ))}
          <label htmlFor="hours-from">{b.from}</label>
          <input id="hours-from" type="time" value={hours.from} onChange={(e) => setHours({ ...hours, from: e.target.value })} />
          <label htmlFor="hours-to">{b.to}</label>
          <input id="hours-to" type="time" value={hours.to} onChange={(e) => setHours({ ...hours, to: e.target.value })} />
        </fieldset>
      </fieldset>
      <fieldset>
        <legend>{b.eventText}</legend>
        <p className="help">{b.eventTextHelp}</p>
        <label htmlFor="title-template">{b.titleTemplate}</label>
        <input id="title-template" value={draft.titleTemplate} onChange={(e) => set('titleTemplate', e.target.value)} />
        <label htmlFor="description-template">{b.descriptionTemplate}</label>
        <textarea id="description-template" rows={2} value={draft.descriptionTemplate} onChange={(e) => set('descriptionTemplate', e.target.value)} />
      </fieldset>
      <fieldset>
        <legend>{b.messages}</legend>
        <p className="help">{b.messagesHelp}</p>
        {(['booked', 'moved', 'cancelled'] as const).map((k) => (
          <span key={k} className="message-row">
            <label htmlFor={`msg-${k}`}>{k === 'booked' ? b.msgBooked : k === 'moved' ? b.msgMoved : b.msgCancelled}</label>
            <textarea id={`msg-${k}`} rows={2} value={draft.messages[k]} onChange={(e) => set('messages', { ...draft.messages, [k]: e.target.value })} />
          </span>
        ))}
        <label htmlFor="msg-locale">{b.locale}</label>
        <input id="msg-locale" value={draft.messages.locale} onChange={(e) => set('messages', { ...draft.messages, locale: e.target.value })} />
      </fieldset>
      <fieldset>
        <legend>{b.templates}</legend>
        <p className="help">{b.templatesHelp}</p>
        {(['booked', 'moved', 'cancelled'] as const).map((k) => (
          <div key={k} className="message-row" role="group" aria-label={k === 'booked' ? b.msgBooked : k === 'moved' ? b.msgMoved : b.msgCancelled}>
            <strong>{k === 'booked' ? b.msgBooked : k === 'moved' ? b.msgMoved : b.msgCancelled}</strong>
            <TemplateFields id={`confirm-${k}`} value={draft.confirmation[k]} onChange={(v) => set('confirmation', { ...draft.confirmation, [k]: v })} />
          </div>
        ))}
      </fieldset>
      <fieldset>
        <legend>{b.reminder}</legend>
        <label className="checkbox">
          <input type="checkbox" checked={draft.reminder.enabled} onChange={(e) => set('reminder', { ...draft.reminder, enabled: e.target.checked })} />
          {b.reminderEnabled}
        </label>
        <label htmlFor="reminder-hours">{b.reminderHours}</label>
        <input
          id="reminder-hours"
          type="number"
          min={1}
          max={168}
          value={Math.round(draft.reminder.minutesBefore / 60)}
          onChange={(e) => set('reminder', { ...draft.reminder, minutesBefore: Math.max(15, Number(e.target.value) * 60) })}
        />
        <TemplateFields id="reminder" value={draft.reminder.template} onChange={(v) => set('reminder', { ...draft.reminder, template: v })} />
      </fieldset>
      {save.isError ? (
        <p className="error" role="alert">
          {errorText(save.error)}
        </p>
      ) : save.isSuccess ? (
        <p role="status">{b.saved}</p>
      ) : null}
      <button type="submit" disabled={save.isPending}>
        {b.save}
      </button>
    </form>
  );
}

/** The Settings screen's sections for booking (Google Calendar) and for events to other systems. */
export function IntegrationsSettings(): React.JSX.Element {
  const b = useBookingStrings();
  return (
    <>
      <section className="admin-section settings-section" aria-labelledby="settings-booking" id="section-booking">
        <h3 id="settings-booking">{b.googleTitle}</h3>
        <GoogleConnection />
      </section>
      <section className="admin-section settings-section" aria-labelledby="settings-events" id="section-events">
        <h3 id="settings-events">{b.eventsTitle}</h3>
        <EventsSettings />
      </section>
    </>
  );
}
