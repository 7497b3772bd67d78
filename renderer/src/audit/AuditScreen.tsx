import { useMutation } from '@tanstack/react-query';
import { useCallback, useMemo, useState } from 'react';
import { AUDIT_ACTIONS, type AuditAction, type AuditFilter } from '../../../shared/rpc';
import { SecurityAlerts, useDateTime } from '../admin';
import { flattenBySeq } from './flatten';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { AuditList } from './AuditList';
import { downloadText } from './download';
import { useAuditEntries, useAuditUsers, usePatientSearch } from './queries';
import { actionLabel, useAuditStrings } from './strings';
import { VerifyPanel } from './VerifyPanel';
import './audit.css';

interface Patient {
  contactId: number;
  name: string;
}

interface Draft {
  userId: string;
  sessionId: string;
  patient: Patient | null;
  action: AuditAction | '';
  /** `datetime-local` values, local wall-clock time. */
  from: string;
  to: string;
}
const EMPTY: Draft = { userId: '', sessionId: '', patient: null, action: '', from: '', to: '' };

/** `<input type="datetime-local">` speaks local wall-clock time; the core wants ms since epoch. */
const toMs = (local: string): number | undefined => {
  const ms = local ? new Date(local).getTime() : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
};

function PatientPicker({ patient, onPick }: { patient: Patient | null; onPick(p: Patient | null): void }): React.JSX.Element {
  const s = useAuditStrings();
  const { errorText } = useI18n();
  const [text, setText] = useState('');
  const [query, setQuery] = useState('');
  const found = usePatientSearch(query);
  if (patient) {
    return (
      <div className="field">
        <span className="field-label" id="patient-label">
          {s.patient}
        </span>
        <span className="picked" aria-labelledby="patient-label" data-testid="picked-patient">
          <strong>{patient.name}</strong>
          <button type="button" className="small" onClick={() => onPick(null)}>
            {s.clearPatient}
          </button>
        </span>
      </div>
    );
  }
  return (
    <div className="field patient-picker">
      <label htmlFor="patient-search">{s.findPatient}</label>
      <form
        className="inline-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(text.trim());
        }}
      >
        <input id="patient-search" type="search" value={text} autoComplete="off" onChange={(e) => setText(e.target.value)} />
        <button type="submit" className="small" disabled={text.trim() === ''}>
          {found.isFetching ? s.searching : s.search}
        </button>
      </form>
      {found.isError ? (
        <p className="form-error" role="alert">
          {errorText(found.error)}
        </p>
      ) : null}
      {found.data?.length === 0 ? <p className="help">{s.noPatients}</p> : null}
      {found.data && found.data.length > 0 ? (
        <ul className="patient-results" aria-label={s.patientResults}>
          {found.data.map((p) => {
            const name = p.name ?? s.unknownPatient(p.contactId);
            return (
              <li key={p.contactId}>
                <button type="button" className="small secondary" aria-label={s.choosePatient(name)} onClick={() => onPick({ contactId: p.contactId, name })}>
                  {name}
                </button>
              </li>
            );
          })}
        </ul>
      ) : null}
    </div>
  );
}

/** The auditor's desk: who did what to which patient, from where, and whether the log still holds. */
export function AuditScreen(): React.JSX.Element {
  const s = useAuditStrings();
  const { errorText } = useI18n();
  const when = useDateTime();
  const rpc = useRpc();
  const users = useAuditUsers();
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [report, setReport] = useState<string | null>(null);
  const { userId, sessionId, patient, action, from, to } = draft;

  const filter = useMemo<AuditFilter>(() => {
    const f: AuditFilter = {};
    if (userId) f.userId = userId;
    if (sessionId) f.sessionId = sessionId;
    if (patient) f.contactId = patient.contactId;
    if (action) f.action = action;
    const fromMs = toMs(from);
    const toMsValue = toMs(to);
    if (fromMs !== undefined) f.from = fromMs;
    if (toMsValue !== undefined) f.to = toMsValue;
    return f;
  }, [userId, sessionId, patient, action, from, to]);

  const entries = useAuditEntries(filter);
  const items = useMemo(() => flattenBySeq(entries.data?.pages), [entries.data]);
  const loadMore = useCallback(() => void entries.fetchNextPage(), [entries]);
  const exportView = useMutation({
    mutationFn: () => rpc.call('audit.export', { filter }),
    onSuccess: (file) => {
      downloadText(`${file.fileBaseName}.json`, file.json, 'application/json');
      downloadText(`${file.fileBaseName}.csv`, file.csv, 'text/csv');
    },
  });
  /** A new filter; a manual change (no `title`) leaves the report it may have started from. */
  const apply = (next: Draft, title: string | null = null): void => {
    setDraft(next);
    setReport(title);
    exportView.reset();
  };
  const edit = (patch: Partial<Draft>): void => apply({ ...draft, ...patch });

  const userName = (id: string): string => users.data?.find((u) => u.id === id)?.displayName ?? id;
  const canReportUser = (userId !== '' || sessionId !== '') && toMs(from) !== undefined && toMs(to) !== undefined;

  return (
    <main className="audit-screen" aria-labelledby="audit-title" data-testid="audit-screen">
      <h2 id="audit-title" className="screen-title">
        {s.title}
      </h2>
      <SecurityAlerts />
      <VerifyPanel />
      <section className="admin-section audit-filters" aria-labelledby="filters-title">
        <h3 id="filters-title">{s.filters}</h3>
        <div className="filter-grid">
          <div className="field">
            <label htmlFor="audit-user">{s.user}</label>
            <select id="audit-user" value={userId} onChange={(e) => edit({ userId: e.target.value })}>
              <option value="">{s.allUsers}</option>
              {users.data?.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.displayName} ({u.username})
                </option>
              ))}
            </select>
          </div>
          <PatientPicker patient={patient} onPick={(p) => edit({ patient: p })} />
          <div className="field">
            <label htmlFor="audit-action">{s.action}</label>
            <select id="audit-action" value={action} onChange={(e) => edit({ action: e.target.value as AuditAction | '' })}>
              <option value="">{s.allActions}</option>
              {AUDIT_ACTIONS.map((a) => (
                <option key={a} value={a}>
                  {actionLabel(s, a)}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="audit-from">{s.from}</label>
            <input id="audit-from" type="datetime-local" step={1} value={from} onChange={(e) => edit({ from: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="audit-to">{s.to}</label>
            <input id="audit-to" type="datetime-local" step={1} value={to} onChange={(e) => edit({ to: e.target.value })} />
          </div>
          {sessionId ? (
            <div className="field">
              <span className="field-label">{s.session}</span>
              <span className="picked">
                <span className="mono" title={sessionId}>
                  {sessionId.slice(0, 8)}
                </span>
                <button type="button" className="small" onClick={() => edit({ sessionId: '' })}>
                  {s.clearSession}
                </button>
              </span>
            </div>
          ) : null}
        </div>
        <div className="report-actions">
          <h4 className="visually-hidden">{s.reports}</h4>
          <button
            type="button"
            className="secondary"
            disabled={!patient}
            aria-describedby="report-patient-help"
            onClick={() => patient && apply({ ...EMPTY, patient }, s.reportPatientTitle(patient.name))}
          >
            {s.reportPatient}
          </button>
          <button
            type="button"
            className="secondary"
            disabled={!canReportUser}
            aria-describedby="report-user-help"
            onClick={() => {
              const who = sessionId ? `${s.session} ${sessionId.slice(0, 8)}` : userName(userId);
              apply({ ...draft, patient: null, action: '' }, s.reportUserTitle(who, when.local(toMs(from)!), when.local(toMs(to)!)));
            }}
          >
            {s.reportUser}
          </button>
          <button
            type="button"
            className="small"
            onClick={() => apply(EMPTY)}
          >
            {s.clearFilters}
          </button>
          <p id="report-patient-help" className="help">
            {patient ? '' : s.reportPatientHelp}
          </p>
          <p id="report-user-help" className="help">
            {canReportUser ? '' : s.reportUserHelp}
          </p>
        </div>
      </section>
      <section className="admin-section audit-results" aria-labelledby="results-title">
        <div className="section-head">
          <h3 id="results-title">{report ?? s.entries}</h3>
          <button type="button" className="primary" disabled={exportView.isPending || entries.isPending} onClick={() => exportView.mutate()}>
            {exportView.isPending ? s.exporting : s.export}
          </button>
        </div>
        {exportView.data ? (
          <p className="ok-note" role="status">
            {s.exported(exportView.data.entries, exportView.data.fileBaseName)}
          </p>
        ) : null}
        {exportView.isError ? (
          <p className="form-error" role="alert">
            {errorText(exportView.error)}
          </p>
        ) : null}
        {entries.isError ? (
          <p className="state error" role="alert">
            {errorText(entries.error)}
          </p>
        ) : null}
        {entries.isPending ? <p className="state">{s.loadingMore}</p> : null}
        {entries.isSuccess && items.length === 0 ? <p className="state">{s.noEntries}</p> : null}
        {items.length > 0 ? (
          <AuditList items={items} hasMore={entries.hasNextPage} loadingMore={entries.isFetchingNextPage} onLoadMore={loadMore} onSession={(id) => edit({ sessionId: id })} />
        ) : null}
      </section>
    </main>
  );
}
