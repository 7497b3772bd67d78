import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { FormFooter } from './FormFooter';
import { HelpedField } from './HelpedField';

/**
 * What the window shows when the core cannot open the clinic's data because this computer's
 * keychain lacks the database key (new hardware): the IT admin types the recovery key.
 */
export function RestoreAccess(): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [recoveryKey, setRecoveryKey] = useState('');
  const restore = useMutation({
    mutationFn: () => rpc.call('recovery.restore', { recoveryKey }),
    // Every query failed while the core was locked; all of them are worth asking again.
    onSuccess: () => void qc.invalidateQueries(),
  });
  return (
    <main className="setup" data-testid="restore-access">
      <div className="setup-card">
        <h1>{t.restoreTitle}</h1>
        <p>{t.restoreIntro}</p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            restore.mutate();
          }}
        >
          <HelpedField id="recovery-key-input" label={t.recoveryKeyLabel} help={t.restoreKeyHelp} required className="mono" value={recoveryKey} onChange={(e) => setRecoveryKey(e.target.value)} spellCheck={false} />
          <p className="help">{t.restoreAfter}</p>
          <FormFooter error={restore.isError ? errorText(restore.error) : null} pending={restore.isPending} label={restore.isPending ? t.restoring : t.restore} />
        </form>
      </div>
    </main>
  );
}
