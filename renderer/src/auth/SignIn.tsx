import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { useAuthStatus } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { LanguagePicker } from '../settings';
import { signInErrorText } from './errors';
import { AUTH_META, startSession, type EndReason } from './session';

/**
 * The desk's sign-in: username and password, then the code from the authenticator app when the
 * account has two-factor on. The people who used this desk lately are one click away.
 */
export function SignIn({ reason }: { reason: EndReason | null }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const recent = useAuthStatus().data?.recentUsers ?? [];
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needsCode, setNeedsCode] = useState(false);
  const passwordRef = useRef<HTMLInputElement>(null);
  const signIn = useMutation({
    meta: AUTH_META,
    mutationFn: () => rpc.call('auth.signIn', { username, password, ...(needsCode ? { secondFactor: code } : {}) }),
    onSuccess: (result) => {
      if (result.status === 'second_factor_required') {
        setNeedsCode(true);
        return;
      }
      setPassword('');
      setCode('');
      startSession(qc, result.whoami);
    },
    onError: () => setCode(''),
  });
  const restart = (): void => {
    setNeedsCode(false);
    setPassword('');
    setCode('');
    signIn.reset();
  };

  return (
    <main className="setup" data-testid="sign-in">
      <div className="setup-card signin-card">
        <div className="setup-language">
          <LanguagePicker id="signin-lang" visibleLabel />
        </div>
        <h1>{t.signInTitle}</h1>
        {reason ? (
          <p className="notice" role="status" data-testid="session-ended">
            {t[`ended_${reason}`]}
          </p>
        ) : null}
        <p className="muted">{t.signInIntro}</p>
        {recent.length > 0 && !needsCode ? (
          <section className="recent-users" aria-labelledby="recent-users-title">
            <h2 id="recent-users-title">{t.recentUsers}</h2>
            <ul>
              {recent.map((u) => (
                <li key={u.username}>
                  <button
                    type="button"
                    className="secondary"
                    aria-pressed={u.username === username}
                    onClick={() => {
                      setUsername(u.username);
                      passwordRef.current?.focus();
                    }}
                  >
                    {t.recentUser(u.displayName, u.username)}
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ) : null}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            signIn.mutate();
          }}
        >
          {needsCode ? (
            <div className="field">
              <label htmlFor="second-factor">{t.secondFactor}</label>
              <input
                id="second-factor"
                required
                autoFocus
                className="mono"
                inputMode="text"
                autoComplete="one-time-code"
                spellCheck={false}
                maxLength={20}
                value={code}
                onChange={(e) => setCode(e.target.value)}
                aria-describedby="second-factor-help"
              />
              <p id="second-factor-help" className="help">
                {t.secondFactorHelp}
              </p>
            </div>
          ) : (
            <>
              <div className="field">
                <label htmlFor="username">{t.username}</label>
                <input id="username" required autoComplete="username" autoCapitalize="none" spellCheck={false} value={username} onChange={(e) => setUsername(e.target.value)} />
              </div>
              <div className="field">
                <label htmlFor="password">{t.password}</label>
                <input id="password" ref={passwordRef} type="password" required autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
              </div>
            </>
          )}
          {signIn.isError ? (
            <p className="form-error" role="alert">
              {signInErrorText(t, signIn.error, errorText)}
            </p>
          ) : null}
          <div className="setup-actions">
            {needsCode ? (
              <button type="button" className="secondary" onClick={restart}>
                {t.otherAccount}
              </button>
            ) : null}
            <button type="submit" className="primary" disabled={signIn.isPending}>
              {signIn.isPending ? t.signingIn : needsCode ? t.verifyCode : t.signIn}
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
