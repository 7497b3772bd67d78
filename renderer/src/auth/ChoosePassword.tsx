import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { keys, type SignedIn } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { codeOf } from './errors';
import { NewPasswordField, rejectionOf } from './PasswordField';
import { AUTH_META } from './session';

/**
 * A new password, twice. In `firstTime` (the admin gave a one-time password) the current one is
 * not asked again: the user just proved it by signing in.
 */
export function PasswordChangeForm({ me, firstTime, onDone }: { me: SignedIn; firstTime: boolean; onDone?(): void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const change = useMutation({
    meta: AUTH_META,
    mutationFn: () => rpc.call('auth.changePassword', { newPassword: next, ...(firstTime ? {} : { currentPassword: current }) }),
    onSuccess: (whoami) => {
      setCurrent('');
      setNext('');
      setRepeat('');
      qc.setQueryData(keys.whoami, whoami);
      onDone?.();
    },
  });
  const rejection = rejectionOf(t, change.error);
  const prefix = firstTime ? 'choose' : 'change';
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        setMismatch(next !== repeat);
        if (next === repeat) change.mutate();
      }}
    >
      {firstTime ? null : (
        <div className="field">
          <label htmlFor={`${prefix}-current`}>{t.currentPassword}</label>
          <input id={`${prefix}-current`} type="password" required autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />
        </div>
      )}
      <NewPasswordField id={`${prefix}-new`} label={t.newPassword} value={next} onChange={setNext} rejection={rejection} withTwoFactor={me.twoFactor} />
      <div className="field">
        <label htmlFor={`${prefix}-repeat`}>{t.repeatPassword}</label>
        <input
          id={`${prefix}-repeat`}
          type="password"
          required
          autoComplete="new-password"
          value={repeat}
          onChange={(e) => setRepeat(e.target.value)}
          aria-invalid={mismatch ? true : undefined}
          aria-describedby={mismatch ? `${prefix}-repeat-error` : undefined}
        />
        {mismatch ? (
          <p id={`${prefix}-repeat-error`} className="form-error" role="alert">
            {t.passwordsDiffer}
          </p>
        ) : null}
      </div>
      {change.isError && !rejection ? (
        <p className="form-error" role="alert">
          {codeOf(change.error) === 'UNAUTHENTICATED' ? t.wrongPassword : errorText(change.error)}
        </p>
      ) : null}
      {change.isSuccess && !firstTime ? (
        <p className="notice" role="status">
          {t.passwordChanged}
        </p>
      ) : null}
      <div className="setup-actions">
        <button type="submit" className="primary" disabled={change.isPending}>
          {change.isPending ? t.savingPassword : firstTime ? t.savePassword : t.changePassword}
        </button>
      </div>
    </form>
  );
}

/** Before anything else after signing in with a one-time password. */
export function ChoosePassword({ me, onSignOut }: { me: SignedIn; onSignOut(): void }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <main className="setup" data-testid="choose-password">
      <div className="setup-card">
        <h1>{t.choosePasswordTitle}</h1>
        <p>{t.choosePasswordIntro(me.displayName)}</p>
        <PasswordChangeForm me={me} firstTime />
        <p className="signout-line">
          <button type="button" className="link" onClick={onSignOut}>
            {t.signOut}
          </button>
        </p>
      </div>
    </main>
  );
}
