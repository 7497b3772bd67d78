import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useDateTime } from '../admin/useDateTime';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { PathField } from './PathField';
import { useBackupStrings } from './strings';
import './backup.css';

/**
 * The first run's choice: create the first administrator (`children`), or — a new computer for a
 * clinic that already used Clinic Inbox — restore from a backup file with the recovery key. The
 * core replaces its brand-new, never-used installation with the backup's (database, device keys,
 * settings, users); the window is then signed out and shows sign-in.
 *
 * The file is a typed path (the web harness cannot browse the local disk); in the Electron shell
 * the OS's open-file dialog fills the same field.
 */
export function AdminStepOrRestore({ children }: { children: ReactNode }): React.JSX.Element {
  const s = useBackupStrings();
  const [restoring, setRestoring] = useState(false);
  if (restoring) return <RestoreFromBackup onCancel={() => setRestoring(false)} />;
  return (
    <>
      {children}
      <div className="first-run-restore">
        <p className="help">{s.restoreInsteadHelp}</p>
        <button type="button" className="secondary" onClick={() => setRestoring(true)}>
          {s.restoreInstead}
        </button>
      </div>
    </>
  );
}

function RestoreFromBackup({ onCancel }: { onCancel(): void }): React.JSX.Element {
  const s = useBackupStrings();
  const { errorText } = useI18n();
  const dt = useDateTime();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [path, setPath] = useState('');
  const [recoveryKey, setRecoveryKey] = useState('');
  const restore = useMutation({
    mutationFn: () => rpc.call('backup.restoreFromFile', { path: path.trim(), recoveryKey: recoveryKey.trim() }),
    onSuccess: () => setRecoveryKey(''),
  });
  if (restore.data) {
    return (
      <div data-testid="restored-from-backup">
        <h2>{s.restoredTitle}</h2>
        <p role="status">{s.restoredNewComputer(dt.local(restore.data.createdAt))}</p>
        <p>{s.erasuresReapplied(restore.data.erasuresReapplied)}</p>
        {/* Every query answered for the fresh installation; the restored one answers them now. */}
        <button type="button" className="primary" onClick={() => void qc.invalidateQueries()}>
          {s.signInAgain}
        </button>
      </div>
    );
  }
  return (
    <form
      aria-labelledby="first-run-restore-title"
      data-testid="first-run-restore"
      onSubmit={(e) => {
        e.preventDefault();
        restore.mutate();
      }}
    >
      <h2 id="first-run-restore-title">{s.firstRunTitle}</h2>
      <p className="help">{s.firstRunIntro}</p>
      <PathField id="restore-file" label={s.filePath} help={s.filePathHelp} purpose="restore-backup" required value={path} onChange={setPath} />
      <div className="field">
        <label htmlFor="restore-recovery-key">{s.recoveryKey}</label>
        <input id="restore-recovery-key" className="mono" required autoComplete="off" spellCheck={false} value={recoveryKey} onChange={(e) => setRecoveryKey(e.target.value)} />
      </div>
      {restore.isError ? (
        <p className="form-error" role="alert">
          {errorText(restore.error)}
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="secondary" onClick={onCancel}>
          {s.back}
        </button>
        <button type="submit" className="primary" disabled={restore.isPending}>
          {restore.isPending ? s.restoring : s.startRestore}
        </button>
      </div>
    </form>
  );
}
