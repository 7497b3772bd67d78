import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { BackupEntry, BackupSettings, BackupStatus, RpcEventPayload } from '../../../shared/rpc';
import { ConfirmDialog } from '../admin/Dialog';
import { QueryState } from '../admin/QueryState';
import { useDateTime } from '../admin/useDateTime';
import '../admin/admin.css';
import { useDataAccess } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { PathField } from './PathField';
import { showRestoreOutcome } from './RestoreOutcome';
import { useBackupStrings, type BackupStrings } from './strings';
import './backup.css';

export const backupKeys = {
  status: ['backup', 'status'] as const,
  list: ['backup', 'list'] as const,
};

type Progress = RpcEventPayload<'backup.progress'>;

/** `backup.status`, refetched whenever the core says it changed (a run finished, settings saved). */
export function useBackupStatus(enabled = true) {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(
    () =>
      rpc.on((event) => {
        if (event !== 'backup.statusChanged') return;
        void qc.invalidateQueries({ queryKey: backupKeys.status });
        void qc.invalidateQueries({ queryKey: backupKeys.list });
      }),
    [rpc, qc],
  );
  return useQuery({ queryKey: backupKeys.status, queryFn: () => rpc.call('backup.status', {}), enabled: useDataAccess() && enabled, refetchInterval: 60_000 });
}

/** The admins' banner, on every view: a backup failed or was missed since the last good one. */
export function BackupBanner({ onOpen }: { onOpen?(): void }): React.JSX.Element | null {
  const s = useBackupStrings();
  const dt = useDateTime();
  const status = useBackupStatus();
  const failure = status.data?.failuresSinceGood ? status.data.lastFailure : null;
  if (!failure) return null;
  return (
    <div className="banner warn backup-banner" role="alert" data-testid="backup-banner">
      <p>{failure.code === 'MISSED' ? s.missedBanner(dt.local(failure.at)) : s.failedBanner(dt.local(failure.at), failure.code)}</p>
      {onOpen ? (
        <button type="button" onClick={onOpen}>
          {s.openBackups}
        </button>
      ) : null}
    </div>
  );
}

/** The admin's backups: status, settings, "Back up now" with its progress, the backups in the folder, verify and restore. */
export function BackupScreen(): React.JSX.Element {
  const s = useBackupStrings();
  const status = useBackupStatus();
  return (
    <main className="admin-screen backup-screen" aria-labelledby="backup-title" data-testid="backup-screen">
      <h2 id="backup-title" className="screen-title">
        {s.title}
      </h2>
      <BackupBanner />
      {status.data ? (
        <>
          {status.data.recoveryKeyConfigured ? null : (
            <p className="banner warn" role="note">
              {s.noRecoveryKey}
            </p>
          )}
          <StatusSection status={status.data} />
          <SettingsSection initial={status.data.settings} />
          <BackupsSection hasFolder={status.data.settings.destination !== null} />
        </>
      ) : (
        <QueryState query={status} />
      )}
    </main>
  );
}

function StatusSection({ status }: { status: BackupStatus }): React.JSX.Element {
  const s = useBackupStrings();
  const dt = useDateTime();
  return (
    <section aria-labelledby="backup-status-title" className="admin-section">
      <h3 id="backup-status-title">{s.status}</h3>
      <dl className="backup-status">
        <dt>{s.lastGood}</dt>
        <dd data-testid="backup-last-good">{status.lastGood ? dt.local(status.lastGood.at) : s.none}</dd>
        <dt>{s.nextRun}</dt>
        <dd>{status.nextRunAt ? dt.local(status.nextRunAt) : s.notPlanned}</dd>
        <dt>{s.lastFailure}</dt>
        <dd>{status.lastFailure ? s.failure(dt.local(status.lastFailure.at), status.lastFailure.code) : s.none}</dd>
      </dl>
    </section>
  );
}

function SettingsSection({ initial }: { initial: BackupSettings }): React.JSX.Element {
  const s = useBackupStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [form, setForm] = useState({ ...initial, destination: initial.destination ?? '' });
  const save = useMutation({
    mutationFn: () => rpc.call('backup.updateSettings', { ...form, destination: form.destination.trim() === '' ? null : form.destination.trim() }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: backupKeys.status });
      void qc.invalidateQueries({ queryKey: backupKeys.list });
    },
  });
  const set = (patch: Partial<typeof form>): void => {
    if (save.isSuccess) save.reset();
    setForm((f) => ({ ...f, ...patch }));
  };
  return (
    <section aria-labelledby="backup-settings-title" className="admin-section">
      <h3 id="backup-settings-title">{s.settings}</h3>
      <form
        className="settings-form"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <div className="form-grid">
          <PathField id="backup-destination" className="field wide" label={s.destination} help={s.destinationHelp} purpose="backup-destination" value={form.destination} onChange={(destination) => set({ destination })} />
          <div className="field">
            <label htmlFor="backup-daily-at">{s.dailyAt}</label>
            <input id="backup-daily-at" type="time" required value={form.dailyAt} onChange={(e) => set({ dailyAt: e.target.value })} />
          </div>
          <div className="field">
            <label htmlFor="backup-keep-daily">{s.keepDaily}</label>
            <input id="backup-keep-daily" type="number" min={1} max={365} required value={form.keepDaily} onChange={(e) => set({ keepDaily: Number(e.target.value) })} />
          </div>
          <div className="field">
            <label htmlFor="backup-keep-monthly">{s.keepMonthly}</label>
            <input id="backup-keep-monthly" type="number" min={0} max={120} required value={form.keepMonthly} onChange={(e) => set({ keepMonthly: Number(e.target.value) })} />
          </div>
        </div>
        {save.isError ? (
          <p className="form-error" role="alert">
            {errorText(save.error)}
          </p>
        ) : null}
        <p role="status" className="help">
          {save.isSuccess ? s.saved : ''}
        </p>
        <button type="submit" className="primary" disabled={save.isPending}>
          {save.isPending ? s.saving : s.save}
        </button>
      </form>
    </section>
  );
}

const phaseText = (s: BackupStrings, p: Progress): string => s[`phase_${p.phase}`];
const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(bytes < 10e6 ? 1 : 0)} MB`;

function BackupsSection({ hasFolder }: { hasFolder: boolean }): React.JSX.Element {
  const s = useBackupStrings();
  const { errorText } = useI18n();
  const dt = useDateTime();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [progress, setProgress] = useState<Progress | null>(null);
  const [verified, setVerified] = useState<Record<string, { ok: boolean; problem: string | null }>>({});
  const [restoring, setRestoring] = useState<BackupEntry | null>(null);
  const list = useQuery({ queryKey: backupKeys.list, queryFn: () => rpc.call('backup.list', {}), enabled: useDataAccess() && hasFolder });
  useEffect(
    () =>
      rpc.on((event, payload) => {
        if (event === 'backup.progress') setProgress(payload as Progress);
      }),
    [rpc],
  );
  const run = useMutation({
    mutationFn: () => rpc.call('backup.runNow', {}),
    onMutate: () => setProgress({ phase: 'snapshot', fraction: 0 }),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: backupKeys.list });
      void qc.invalidateQueries({ queryKey: backupKeys.status });
    },
  });
  const verify = useMutation({
    mutationFn: (file: string) => rpc.call('backup.verify', { file }),
    onSuccess: (result, file) => setVerified((v) => ({ ...v, [file]: result })),
  });
  const busy = run.isPending;
  return (
    <section aria-labelledby="backup-list-title" className="admin-section">
      <h3 id="backup-list-title">{s.list}</h3>
      <div className="backup-run">
        <button type="button" className="primary" disabled={!hasFolder || busy} onClick={() => run.mutate()}>
          {busy ? s.running : s.backUpNow}
        </button>
        {progress ? (
          <div className="backup-progress">
            <progress max={1} value={progress.fraction} aria-label={s.progressLabel} />
            <span role="status">{phaseText(s, progress)}</span>
          </div>
        ) : null}
      </div>
      {run.isError ? (
        <p className="form-error" role="alert">
          {errorText(run.error)}
        </p>
      ) : null}
      {!hasFolder ? (
        <p className="muted">{s.notPlanned}</p>
      ) : !list.data ? (
        <QueryState query={list} />
      ) : list.data.length === 0 ? (
        <p className="muted">{s.noBackups}</p>
      ) : (
        <table className="admin-table" data-testid="backup-list">
          <thead>
            <tr>
              <th scope="col">{s.date}</th>
              <th scope="col">{s.messages}</th>
              <th scope="col">{s.contacts}</th>
              <th scope="col">{s.size}</th>
              <th scope="col">{s.state}</th>
              <th scope="col">{s.actions}</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((b) => {
              const date = dt.localSeconds(b.createdAt);
              const check = verified[b.file];
              return (
                <tr key={b.file}>
                  <th scope="row">{date}</th>
                  <td>{b.counts?.messages ?? '–'}</td>
                  <td>{b.counts?.contacts ?? '–'}</td>
                  <td>{megabytes(b.bytes)}</td>
                  <td>{check ? (check.ok ? s.verifiedOk : check.problem) : b.verified ? s.headerOk : b.problem}</td>
                  <td>
                    <div className="row-actions">
                      <button type="button" aria-label={s.verifyBackup(date)} disabled={verify.isPending} onClick={() => verify.mutate(b.file)}>
                        {verify.isPending && verify.variables === b.file ? s.verifying : s.verify}
                      </button>
                      <button type="button" aria-label={s.restoreBackup(date)} disabled={!b.verified || busy} onClick={() => setRestoring(b)}>
                        {s.restore}
                      </button>
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {restoring ? <RestoreDialog entry={restoring} onClose={() => setRestoring(null)} /> : null}
    </section>
  );
}

/** Confirm (naming the date) and restore; the result (what was erased again) is the window root's. */
function RestoreDialog({ entry, onClose }: { entry: BackupEntry; onClose(): void }): React.JSX.Element {
  const s = useBackupStrings();
  const { errorText } = useI18n();
  const dt = useDateTime();
  const rpc = useRpc();
  const date = dt.localSeconds(entry.createdAt);
  // Shown by the window's root (RestoreOutcome.tsx): this screen goes away with the sign-out.
  const restore = useMutation({
    mutationFn: () => rpc.call('backup.restore', { file: entry.file }),
    onSuccess: (result) => showRestoreOutcome({ date, erasuresReapplied: result.erasuresReapplied }),
  });
  return (
    <ConfirmDialog
      title={s.confirmRestoreTitle(date)}
      message={s.confirmRestore(date, entry.counts?.messages ?? 0, entry.counts?.contacts ?? 0)}
      confirmLabel={restore.isPending ? s.restoring : s.restore}
      cancelLabel={s.cancel}
      busy={restore.isPending}
      // A damaged backup, or one whose database did not open after the swap: the old database runs
      // on. If that one did not open either, RESTORE_ROLLBACK_FAILED says so (errorText).
      error={restore.isError ? ((restore.error as { code?: string }).code === 'VALIDATION_FAILED' ? s.restoreFailed : errorText(restore.error)) : null}
      onConfirm={() => restore.mutate()}
      onCancel={onClose}
    />
  );
}

