import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { keys, useRecoveryStatus } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';

/**
 * The wizard's last step: the IT admin makes the recovery key, sees it once, prints or writes it
 * down, and says so before the inbox opens. The key is never fetched again.
 */
export function RecoveryKeyStep(): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [stored, setStored] = useState(false);
  // A key shown before but never confirmed (the page was reloaded) is replaced by the core: nobody
  // said they kept it, so the new one shown here is the one that counts.
  const status = useRecoveryStatus(true);
  const create = useMutation({ mutationFn: () => rpc.call('recovery.create', { replace: false }) });
  const confirm = useMutation({
    mutationFn: (createdAt: number) => rpc.call('recovery.confirm', { createdAt }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: keys.recovery }),
  });
  const recoveryKey = create.data?.recoveryKey;

  return (
    <div className="recovery-step">
      <p>{t.recoveryIntro}</p>
      {!recoveryKey && status.data?.configured && !status.data.confirmed ? <p className="help" role="status">{t.recoveryNotConfirmed}</p> : null}
      {recoveryKey ? (
        <>
          <figure className="recovery-key" aria-labelledby="recovery-key-label">
            <figcaption id="recovery-key-label">{t.recoveryKeyLabel}</figcaption>
            <output className="mono" data-testid="recovery-key">
              {recoveryKey}
            </output>
          </figure>
          <p className="help">{t.recoveryKeyAdvice}</p>
          <div className="field checkbox">
            <input id="recovery-stored" type="checkbox" checked={stored} onChange={(e) => setStored(e.target.checked)} />
            <label htmlFor="recovery-stored">{t.recoveryKeyStored}</label>
          </div>
          <div className="setup-actions">
            <button type="button" className="secondary" onClick={() => window.print()}>
              {t.printRecoveryKey}
            </button>
            <button type="button" className="primary" disabled={!stored || confirm.isPending} onClick={() => create.data && confirm.mutate(create.data.createdAt)}>
              {t.finishSetup}
            </button>
          </div>
        </>
      ) : (
        <>
          {create.isError ? (
            <p className="form-error" role="alert">
              {errorText(create.error)}
            </p>
          ) : null}
          <div className="setup-actions">
            <button type="button" className="primary" disabled={create.isPending} onClick={() => create.mutate()}>
              {create.isPending ? t.creatingRecoveryKey : t.createRecoveryKey}
            </button>
          </div>
        </>
      )}
    </div>
  );
}
