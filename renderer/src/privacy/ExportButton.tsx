import { useMutation } from '@tanstack/react-query';
import { useEffect, useId, useState } from 'react';
import { nativeChooser } from '../backup';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { usePrivacyStrings } from './strings';

/**
 * Admin only: exports everything about one patient (access and portability requests) into a
 * folder. `pickFolder` is the shell's folder dialog (Electron's `showOpenDialog`); without it the
 * admin types the folder's full path. The core writes only there, under a temporary name it renames.
 */
export function ExportButton({ contactId, pickFolder }: { contactId: number; pickFolder?: () => Promise<string | null> }): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const id = useId();
  const [folder, setFolder] = useState('');
  // In the Electron shell, the OS's folder dialog (a failed choice is no choice).
  const native = nativeChooser('patient-export');
  const pick = pickFolder ?? (native ? () => native(s.folderLabel, folder).catch(() => null) : undefined);
  const [exportId] = useState(() => crypto.randomUUID());
  const [fraction, setFraction] = useState<number | null>(null);
  useEffect(
    () =>
      rpc.on((event, payload) => {
        if (event !== 'privacy.exportProgress') return;
        const p = payload as { exportId: string; fraction: number };
        if (p.exportId === exportId) setFraction(p.fraction);
      }),
    [rpc, exportId],
  );
  const run = useMutation({
    mutationFn: () => rpc.call('privacy.export', { contactId, destinationDir: folder.trim(), exportId }),
    onSettled: () => setFraction(null),
  });
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-export">
      <h3 id={`${id}-h`}>{s.exportTitle}</h3>
      <p className="help">{s.exportHelp}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (folder.trim()) run.mutate();
        }}
      >
        <label htmlFor={`${id}-folder`}>{s.folderLabel}</label>
        <input id={`${id}-folder`} value={folder} required onChange={(e) => setFolder(e.target.value)} />
        {pick ? (
          <button
            type="button"
            onClick={() =>
              void pick().then((f) => {
                if (f) setFolder(f);
              })
            }
          >
            {s.chooseFolder}
          </button>
        ) : null}
        <button type="submit" disabled={run.isPending}>
          {s.exportButton}
        </button>
      </form>
      {run.isPending ? (
        <div>
          <progress max={1} value={fraction ?? 0} aria-label={s.exporting(Math.round((fraction ?? 0) * 100))} />
          <span>{s.exporting(Math.round((fraction ?? 0) * 100))}</span>
        </div>
      ) : null}
      {run.data ? <p role="status">{s.exported(run.data.path)}</p> : null}
      {run.error ? <p role="alert">{errorText(run.error)}</p> : null}
    </section>
  );
}
