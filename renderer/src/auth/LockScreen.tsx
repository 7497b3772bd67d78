import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { keys, type SignedIn } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { codeOf, signInErrorText } from './errors';
import { AUTH_META } from './session';

interface Props {
  me: SignedIn;
  /** Signs this session out; the window shows sign-in with the desk's recent users. */
  onSwitchUser(): void;
  /** Too many wrong passwords: the core signed the session out. */
  onLockedOut(): void;
}

/**
 * Covers the whole window while the session is locked. The desk behind it stays mounted (the open
 * conversation, a half-typed reply) but is hidden and inert, so nothing of a patient shows.
 */
export function LockScreen({ me, onSwitchUser, onLockedOut }: Props): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [pinExhausted, setPinExhausted] = useState(false);
  const [mode, setMode] = useState<'pin' | 'password'>(me.hasPin ? 'pin' : 'password');
  const [secret, setSecret] = useState('');
  const unlock = useMutation({
    meta: AUTH_META,
    mutationFn: () => rpc.call('auth.unlock', mode === 'pin' ? { pin: secret } : { password: secret }),
    onSuccess: (whoami) => {
      setSecret('');
      qc.setQueryData(keys.whoami, whoami);
    },
    onError: (err) => {
      setSecret('');
      if (codeOf(err) !== 'ACCOUNT_LOCKED') return;
      if (mode === 'pin') {
        setPinExhausted(true);
        setMode('password');
        unlock.reset();
      } else {
        onLockedOut();
      }
    },
  });
  const switchTo = (next: 'pin' | 'password'): void => {
    setMode(next);
    setSecret('');
    unlock.reset();
  };

  let error: string | null = null;
  if (unlock.isError) {
    const message = (unlock.error as { message?: string }).message ?? '';
    const left = /(\d+) more/.exec(message);
    if (mode === 'pin' && codeOf(unlock.error) === 'UNAUTHENTICATED' && left) error = t.pinWrong(Number(left[1]));
    else if (mode === 'password' && codeOf(unlock.error) === 'UNAUTHENTICATED') error = t.wrongPassword;
    else error = signInErrorText(t, unlock.error, errorText);
  }

  return (
    <main className="lock-screen" data-testid="lock-screen">
      <div className="setup-card lock-card">
        <h1>{t.lockedTitle}</h1>
        <p>{t.lockedFor(me.displayName)}</p>
        {pinExhausted ? (
          <p className="notice" role="status">
            {t.pinTooMany}
          </p>
        ) : null}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            unlock.mutate();
          }}
        >
          {mode === 'pin' ? (
            <div className="field">
              <label htmlFor="unlock-pin">{t.pin}</label>
              <input
                id="unlock-pin"
                type="password"
                inputMode="numeric"
                pattern="\d{4,8}"
                minLength={4}
                maxLength={8}
                required
                autoFocus
                autoComplete="off"
                className="mono pin-input"
                value={secret}
                onChange={(e) => setSecret(e.target.value.replace(/\D/g, ''))}
              />
            </div>
          ) : (
            <div className="field">
              <label htmlFor="unlock-password">{t.password}</label>
              <input id="unlock-password" type="password" required autoFocus autoComplete="current-password" value={secret} onChange={(e) => setSecret(e.target.value)} />
            </div>
          )}
          {error ? (
            <p className="form-error" role="alert">
              {error}
            </p>
          ) : null}
          <div className="setup-actions">
            <button type="button" className="secondary" onClick={onSwitchUser}>
              {t.switchUser}
            </button>
            {me.hasPin && !pinExhausted ? (
              <button type="button" className="secondary" onClick={() => switchTo(mode === 'pin' ? 'password' : 'pin')}>
                {mode === 'pin' ? t.usePassword : t.usePin}
              </button>
            ) : null}
            <button type="submit" className="primary" disabled={unlock.isPending}>
              {unlock.isPending ? t.unlocking : t.unlock}
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
