import { useQueryClient } from '@tanstack/react-query';
import { useSyncExternalStore } from 'react';
import { Dialog } from '../admin/Dialog';
import { useBackupStrings } from './strings';

/**
 * The result of a same-computer restore, kept outside the screens: the restore signs every window
 * out (the sessions are the backup's), and the first call refused as signed out switches this
 * window to sign-in, which would unmount a dialog inside the backup screen before the admin read
 * how many erasures were applied again. The window's root shows this instead of any screen until
 * the admin continues.
 */
interface Outcome {
  date: string;
  erasuresReapplied: number;
}

let outcome: Outcome | null = null;
const listeners = new Set<() => void>();
const subscribe = (l: () => void) => {
  listeners.add(l);
  return () => void listeners.delete(l);
};

export function showRestoreOutcome(next: Outcome | null): void {
  outcome = next;
  listeners.forEach((l) => l());
}

/** The restore's result dialog while there is one, else null (the window's root renders it first). */
export function useRestoreOutcome(): React.JSX.Element | null {
  const current = useSyncExternalStore(subscribe, () => outcome);
  return current ? <RestoreOutcomeDialog outcome={current} /> : null;
}

function RestoreOutcomeDialog({ outcome: o }: { outcome: Outcome }): React.JSX.Element {
  const s = useBackupStrings();
  const qc = useQueryClient();
  return (
    <Dialog title={s.restoredTitle} onClose={() => undefined}>
      <p>{s.restored(o.date)}</p>
      <p data-testid="erasures-reapplied">{s.erasuresReapplied(o.erasuresReapplied)}</p>
      <div className="dialog-actions">
        <button
          type="button"
          className="primary"
          onClick={() => {
            showRestoreOutcome(null);
            void qc.invalidateQueries();
          }}
        >
          {s.signInAgain}
        </button>
      </div>
    </Dialog>
  );
}
