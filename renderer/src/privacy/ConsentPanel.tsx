import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { privacyKeys, useConsent } from './queries';
import { usePrivacyStrings } from './strings';

type DeskSource = 'patient_wrote' | 'form' | 'desk' | 'imported';
const DESK_SOURCES: readonly DeskSource[] = ['form', 'desk', 'patient_wrote', 'imported'];

/** The contact panel's consent section: status, why templates are refused, the history, and recording a change. */
export function ConsentPanel({ contactId }: { contactId: number }): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText, formatDay, formatTime } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const id = useId();
  const consent = useConsent(contactId);
  const [editing, setEditing] = useState<'opted_in' | 'opted_out' | null>(null);
  const [source, setSource] = useState<DeskSource>('form');
  const [note, setNote] = useState('');
  const record = useMutation({
    mutationFn: (status: 'opted_in' | 'opted_out') => rpc.call('privacy.recordConsent', { contactId, status, source, ...(note.trim() ? { note: note.trim() } : {}) }),
    onSuccess: (saved) => {
      qc.setQueryData(privacyKeys.consent(contactId), saved);
      setEditing(null);
      setNote('');
    },
  });
  if (!consent.data) return <section aria-labelledby={`${id}-h`} className="privacy-consent"><h3 id={`${id}-h`}>{s.consentTitle}</h3>{consent.error ? <p role="alert">{errorText(consent.error)}</p> : null}</section>;
  const c = consent.data;
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-consent">
      <h3 id={`${id}-h`}>{s.consentTitle}</h3>
      <p className={`privacy-badge privacy-consent-${c.status}`}>{s.consentStatus[c.status]}</p>
      {c.status === 'opted_out' ? <p className="help">{s.optedOutExplain}</p> : null}
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            record.mutate(editing);
          }}
        >
          <label htmlFor={`${id}-source`}>{s.sourceLabel}</label>
          <select id={`${id}-source`} value={source} onChange={(e) => setSource(e.target.value as DeskSource)}>
            {DESK_SOURCES.map((x) => (
              <option key={x} value={x}>
                {s.consentSource[x]}
              </option>
            ))}
          </select>
          <label htmlFor={`${id}-note`}>{s.noteLabel}</label>
          <input id={`${id}-note`} value={note} maxLength={500} onChange={(e) => setNote(e.target.value)} />
          <button type="submit" disabled={record.isPending}>
            {s.save}
          </button>
          <button type="button" onClick={() => setEditing(null)}>
            {s.cancel}
          </button>
          {record.error ? <p role="alert">{errorText(record.error)}</p> : null}
        </form>
      ) : (
        <div className="privacy-actions">
          {c.status !== 'opted_in' ? <button onClick={() => setEditing('opted_in')}>{s.recordOptIn}</button> : null}
          {c.status !== 'opted_out' ? <button onClick={() => setEditing('opted_out')}>{s.recordOptOut}</button> : null}
        </div>
      )}
      <h4>{s.history}</h4>
      {c.history.length === 0 ? (
        <p>{s.noHistory}</p>
      ) : (
        <ol className="privacy-history">
          {c.history.map((h, i) => (
            <li key={i}>{s.historyEntry(s.consentStatus[h.status], s.consentSource[h.source], `${formatDay(h.at)} ${formatTime(h.at)}`, h.by === 'system' ? s.system : (h.byName ?? h.by))}</li>
          ))}
        </ol>
      )}
    </section>
  );
}
