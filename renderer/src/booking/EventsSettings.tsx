import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { EVENT_TYPES, type EventType, type Subscription } from '../../../shared/rpc';
import { useDataAccess } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { useBookingStrings } from './strings';

const eventsKey = ['events'] as const;

function DeliveryLog({ subscriptionId }: { subscriptionId: number }): React.JSX.Element {
  const b = useBookingStrings();
  const { lang, t } = useI18n();
  const rpc = useRpc();
  const log = useQuery({ queryKey: [...eventsKey, 'log', subscriptionId], queryFn: () => rpc.call('events.deliveries', { subscriptionId, limit: 50 }), refetchInterval: 5000 });
  if (!log.data) return <p className="state">{t.loading}</p>;
  return (
    <div className="table-scroll">
      <table className="admin-table" aria-label={b.log}>
        <thead>
          <tr>
            <th scope="col">{b.when}</th>
            <th scope="col">{b.type}</th>
            <th scope="col">{b.status}</th>
            <th scope="col">{b.attempts}</th>
            <th scope="col">{b.latency}</th>
            <th scope="col">{b.result}</th>
          </tr>
        </thead>
        <tbody>
          {log.data.map((d) => (
            <tr key={d.id} data-testid="delivery" data-status={d.status}>
              <td>{new Date(d.createdAt).toLocaleString(lang)}</td>
              <td>{d.type === 'test' ? b.sendTest : b.eventNames[d.type]}</td>
              <td>{b.deliveryStatus[d.status]}</td>
              <td>{d.attempts}</td>
              <td>{d.latencyMs === null ? '' : b.ms(d.latencyMs)}</td>
              <td>{d.lastError ?? (d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : '')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SubscriptionRow({ sub }: { sub: Subscription }): React.JSX.Element {
  const b = useBookingStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [showLog, setShowLog] = useState(false);
  const refresh = () => void qc.invalidateQueries({ queryKey: eventsKey });
  const test = useMutation({ mutationFn: () => rpc.call('events.sendTest', { id: sub.id }), onSuccess: refresh });
  const toggle = useMutation({ mutationFn: () => rpc.call('events.update', { id: sub.id, enabled: !sub.enabled }), onSuccess: refresh });
  const remove = useMutation({ mutationFn: () => rpc.call('events.delete', { id: sub.id }), onSuccess: refresh });
  const failure = test.error ?? toggle.error ?? remove.error;
  return (
    <li className="subscription" data-testid="subscription">
      <div>
        <code>{sub.url}</code> {sub.enabled ? null : <em>({b.paused})</em>}
      </div>
      <div className="help">
        {sub.events.map((e) => b.eventNames[e]).join(', ')}
        {sub.includeText ? ` · ${b.includeText}` : ''}
      </div>
      <div className="small">
        {b.delivered(sub.delivered)} · {b.pending(sub.pending)} · {b.failed(sub.failed)}
      </div>
      <div className="row-actions">
        <button type="button" className="secondary" onClick={() => test.mutate()} disabled={test.isPending}>
          {b.sendTest}
        </button>
        <button type="button" className="secondary" aria-expanded={showLog} onClick={() => setShowLog((v) => !v)}>
          {b.log}
        </button>
        <button type="button" className="secondary" onClick={() => toggle.mutate()}>
          {sub.enabled ? b.disable : b.enable}
        </button>
        <button type="button" className="secondary" onClick={() => remove.mutate()}>
          {b.delete}
        </button>
      </div>
      {test.isSuccess ? <p role="status">{b.testQueued}</p> : null}
      {failure ? (
        <p className="error" role="alert">
          {errorText(failure)}
        </p>
      ) : null}
      {showLog ? <DeliveryLog subscriptionId={sub.id} /> : null}
    </li>
  );
}

/** Admins' event subscriptions: add (secret shown once), test, pause, delete, delivery log. */
export function EventsSettings(): React.JSX.Element {
  const b = useBookingStrings();
  const { errorText, t } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const list = useQuery({ queryKey: eventsKey, queryFn: () => rpc.call('events.list', {}), enabled: useDataAccess(), refetchInterval: 5000 });
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<Set<EventType>>(new Set(['booking.created', 'booking.moved', 'booking.cancelled']));
  const [includeText, setIncludeText] = useState(false);
  const [plainHttp, setPlainHttp] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => rpc.call('events.create', { url: url.trim(), events: [...events], includeText, plainHttpConfirmed: plainHttp }),
    onSuccess: (r) => {
      setSecret(r.secret);
      setUrl('');
      void qc.invalidateQueries({ queryKey: eventsKey });
    },
  });
  const isHttp = url.trim().toLowerCase().startsWith('http:');
  return (
    <div data-testid="events-settings">
      <p className="help">{b.eventsIntro}</p>
      {secret ? (
        <div className="secret-once" role="alert">
          <p>{b.secretOnce}</p>
          <code data-testid="event-secret">{secret}</code>{' '}
          <button type="button" className="secondary" onClick={() => setSecret(null)}>
            {b.secretDone}
          </button>
        </div>
      ) : null}
      {list.isPending ? (
        <p className="state">{t.loading}</p>
      ) : list.data && list.data.length > 0 ? (
        <ul className="subscriptions">
          {list.data.map((s) => (
            <SubscriptionRow key={s.id} sub={s} />
          ))}
        </ul>
      ) : (
        <p className="muted">{b.noSubscriptions}</p>
      )}
      <form
        className="stack-form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label htmlFor="event-url">{b.url}</label>
        <input id="event-url" type="url" value={url} onChange={(e) => setUrl(e.target.value)} required />
        <fieldset>
          <legend>{b.events}</legend>
          {EVENT_TYPES.map((e) => (
            <label key={e} className="checkbox">
              <input
                type="checkbox"
                checked={events.has(e)}
                onChange={(ev) => {
                  const next = new Set(events);
                  if (ev.target.checked) next.add(e);
                  else next.delete(e);
                  setEvents(next);
                }}
              />
              {b.eventNames[e]}
            </label>
          ))}
        </fieldset>
        <label className="checkbox">
          <input type="checkbox" checked={includeText} onChange={(e) => setIncludeText(e.target.checked)} aria-describedby="include-text-warning" />
          {b.includeText}
        </label>
        <span id="include-text-warning" className={includeText ? 'warning' : 'help'}>
          {b.includeTextWarning}
        </span>
        {isHttp ? (
          <label className="checkbox">
            <input type="checkbox" checked={plainHttp} onChange={(e) => setPlainHttp(e.target.checked)} />
            {b.plainHttp}
          </label>
        ) : null}
        {create.isError ? (
          <p className="error" role="alert">
            {errorText(create.error)}
          </p>
        ) : null}
        <button type="submit" disabled={create.isPending || events.size === 0}>
          {b.add}
        </button>
      </form>
    </div>
  );
}
