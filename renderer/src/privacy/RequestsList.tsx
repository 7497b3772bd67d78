import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { REQUEST_KINDS, type PrivacyRequest, type RequestKind } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { useRequests } from './queries';
import { usePrivacyStrings } from './strings';

const DAY = 24 * 60 * 60_000;

/**
 * Patients' rights requests with their 30-day deadline: amber at 7 days left, red when overdue.
 * With `contactId`, one patient's requests and a form to register one (the contact panel);
 * without, every open request (the admin's and the desk's list).
 */
export function RequestsList({ contactId, now = Date.now }: { contactId?: number; now?: () => number }): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText, formatDay } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const id = useId();
  const requests = useRequests(contactId, contactId ? 'all' : 'open');
  const [kind, setKind] = useState<RequestKind>('access');
  const [completing, setCompleting] = useState<number | null>(null);
  const [outcome, setOutcome] = useState('');
  const refresh = () => qc.invalidateQueries({ queryKey: ['privacy', 'requests'] });
  const register = useMutation({ mutationFn: () => rpc.call('privacy.requests.register', { contactId: contactId!, kind }), onSuccess: refresh });
  const complete = useMutation({
    mutationFn: (requestId: number) => rpc.call('privacy.requests.complete', { requestId, outcome: outcome.trim() }),
    onSuccess: () => {
      setCompleting(null);
      setOutcome('');
      void refresh();
    },
  });
  const row = (r: PrivacyRequest) => {
    const left = Math.ceil((r.dueAt - now()) / DAY);
    return (
      <li key={r.id} className={`privacy-request privacy-due-${r.dueState}`}>
        <strong>{s.requestKind[r.kind]}</strong>
        {contactId ? null : <span> · {r.contactName ?? s.patientErased}</span>}
        <span> · {s.receivedVia[r.via]} {formatDay(r.receivedAt)}</span>
        <span className="privacy-badge"> · {s.dueState[r.dueState]}</span>
        {r.doneAt === null ? (
          <span>
            {' '}
            · {s.dueBy(formatDay(r.dueAt))} ({s.daysLeft(left)})
          </span>
        ) : (
          <span> · {r.outcome}</span>
        )}
        {r.doneAt === null && completing !== r.id ? <button onClick={() => setCompleting(r.id)}>{s.markDone}</button> : null}
        {completing === r.id ? (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (outcome.trim().length >= 3) complete.mutate(r.id);
            }}
          >
            <label htmlFor={`${id}-outcome-${r.id}`}>{s.outcomeLabel}</label>
            <input id={`${id}-outcome-${r.id}`} value={outcome} minLength={3} maxLength={1000} required onChange={(e) => setOutcome(e.target.value)} />
            <button type="submit" disabled={complete.isPending}>
              {s.save}
            </button>
            <button type="button" onClick={() => setCompleting(null)}>
              {s.cancel}
            </button>
          </form>
        ) : null}
      </li>
    );
  };
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-requests">
      <h3 id={`${id}-h`}>{s.requestsTitle}</h3>
      {requests.error ? <p role="alert">{errorText(requests.error)}</p> : null}
      {requests.data && requests.data.length === 0 ? <p>{s.noRequests}</p> : <ul>{requests.data?.map(row)}</ul>}
      {contactId ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            register.mutate();
          }}
        >
          <label htmlFor={`${id}-kind`}>{s.kindLabel}</label>
          <select id={`${id}-kind`} value={kind} onChange={(e) => setKind(e.target.value as RequestKind)}>
            {REQUEST_KINDS.map((k) => (
              <option key={k} value={k}>
                {s.requestKind[k]}
              </option>
            ))}
          </select>
          <button type="submit" disabled={register.isPending}>
            {s.registerRequest}
          </button>
        </form>
      ) : null}
      {register.error || complete.error ? <p role="alert">{errorText(register.error ?? complete.error)}</p> : null}
    </section>
  );
}
