import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { AUTH_META, NewPasswordField, rejectionOf, startSession } from '../auth';
import { keys } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { FormFooter } from './FormFooter';

/**
 * The wizard's first step while the installation has no admin (a first run, or data from an
 * earlier version that had no accounts): the IT admin's own account, signed in at once.
 */
export function CreateAdminStep(): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [displayName, setDisplayName] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const create = useMutation({
    meta: AUTH_META,
    mutationFn: () => rpc.call('auth.createFirstAdmin', { displayName: displayName.trim(), username: username.trim(), password }),
    onSuccess: (whoami) => {
      setPassword('');
      startSession(qc, whoami);
      void qc.invalidateQueries({ queryKey: keys.authStatus });
    },
  });
  const rejection = rejectionOf(t, create.error);
  return (
    <form
      aria-labelledby="create-admin-title"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate();
      }}
    >
      <h2 id="create-admin-title">{t.createAdminTitle}</h2>
      <p className="help">{t.createAdminIntro}</p>
      <div className="field">
        <label htmlFor="admin-name">{t.yourName}</label>
        <input id="admin-name" required autoComplete="name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="admin-username">{t.username}</label>
        <input id="admin-username" required autoComplete="username" autoCapitalize="none" spellCheck={false} value={username} onChange={(e) => setUsername(e.target.value)} />
      </div>
      <NewPasswordField id="admin-password" label={t.password} value={password} onChange={setPassword} rejection={rejection} withTwoFactor={false} />
      <FormFooter error={create.isError && !rejection ? errorText(create.error) : null} pending={create.isPending} label={create.isPending ? t.creatingAdmin : t.createAdmin} />
    </form>
  );
}
