import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import type { Role } from '../../../shared/rpc';
import { keys, type SignedIn } from '../data/queries';
import { useI18n, type Strings } from '../i18n';
import { useRpc } from '../rpc';
import { PasswordChangeForm } from './ChoosePassword';
import { codeOf } from './errors';
import { AUTH_META } from './session';
import { TwoFactorEnrol } from './TwoFactorEnrol';

export function roleName(t: Strings, role: Role): string {
  return role === 'admin' ? t.roleAdmin : role === 'auditor' ? t.roleAuditor : t.roleReceptionist;
}

/** The signed-in user's own account, as a modal dialog over the desk: password, desk PIN, two-factor. */
export function MyAccount({ me, onClose, onSignOut }: { me: SignedIn; onClose(): void; onSignOut(): void }): React.JSX.Element {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className="account-dialog"
      aria-labelledby="my-account-title"
      data-testid="my-account"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <header className="account-header">
        <h2 id="my-account-title">{t.myAccount}</h2>
        <button type="button" onClick={onClose}>
          {t.close}
        </button>
      </header>
      <p>
        {t.signedInAs(me.displayName, me.username)}
        <br />
        <span className="muted">
          {t.yourRoles}: {me.roles.map((r) => roleName(t, r)).join(', ')}
        </span>
      </p>
      <section aria-labelledby="account-password">
        <h3 id="account-password">{t.changePassword}</h3>
        <PasswordChangeForm me={me} firstTime={false} />
      </section>
      <PinSection me={me} />
      <TwoFactorSection me={me} />
      <p className="signout-line">
        <button type="button" className="secondary" onClick={onSignOut}>
          {t.signOut}
        </button>
      </p>
    </dialog>
  );
}

function PinSection({ me }: { me: SignedIn }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [pin, setPin] = useState('');
  const [password, setPassword] = useState('');
  const save = useMutation({
    meta: AUTH_META,
    mutationFn: (next: string | null) => rpc.call('auth.setPin', { pin: next, password }),
    onSuccess: () => {
      setPin('');
      setPassword('');
      void qc.invalidateQueries({ queryKey: keys.whoami });
    },
  });
  return (
    <section aria-labelledby="account-pin">
      <h3 id="account-pin">{t.deskPin}</h3>
      <p className="help">{t.pinIntro}</p>
      <p data-testid="pin-state">{me.hasPin ? t.pinIsSet : t.pinNotSet}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate(pin);
        }}
      >
        <div className="field">
          <label htmlFor="new-pin">{t.newPin}</label>
          <input
            id="new-pin"
            type="password"
            inputMode="numeric"
            pattern="\d{4,8}"
            minLength={4}
            maxLength={8}
            autoComplete="off"
            className="mono pin-input"
            value={pin}
            onChange={(e) => setPin(e.target.value.replace(/\D/g, ''))}
          />
        </div>
        <div className="field">
          <label htmlFor="pin-password">{t.confirmWithPassword}</label>
          <input id="pin-password" type="password" required autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </div>
        {save.isError ? (
          <p className="form-error" role="alert">
            {codeOf(save.error) === 'UNAUTHENTICATED' ? t.wrongPassword : errorText(save.error)}
          </p>
        ) : null}
        {save.isSuccess ? (
          <p className="notice" role="status">
            {save.variables === null ? t.pinRemoved : t.pinSaved}
          </p>
        ) : null}
        <div className="setup-actions">
          {me.hasPin ? (
            <button type="button" className="secondary" disabled={save.isPending || password === ''} onClick={() => save.mutate(null)}>
              {t.removePin}
            </button>
          ) : null}
          <button type="submit" className="primary" disabled={save.isPending || !/^\d{4,8}$/.test(pin)}>
            {t.setPin}
          </button>
        </div>
      </form>
    </section>
  );
}

function TwoFactorSection({ me }: { me: SignedIn }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [enrolling, setEnrolling] = useState(false);
  const [password, setPassword] = useState('');
  const disable = useMutation({
    meta: AUTH_META,
    mutationFn: () => rpc.call('auth.twoFactor.disable', { password }),
    onSuccess: () => {
      setPassword('');
      void qc.invalidateQueries({ queryKey: keys.whoami });
    },
  });
  return (
    <section aria-labelledby="account-2fa">
      <h3 id="account-2fa">{t.twoFactorTitle}</h3>
      <p data-testid="two-factor-state">{me.twoFactor ? t.twoFactorOn : t.twoFactorOff}</p>
      {me.twoFactor ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            disable.mutate();
          }}
        >
          <div className="field">
            <label htmlFor="disable-2fa-password">{t.confirmWithPassword}</label>
            <input id="disable-2fa-password" type="password" required autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          </div>
          {disable.isError ? (
            <p className="form-error" role="alert">
              {codeOf(disable.error) === 'UNAUTHENTICATED' ? t.wrongPassword : errorText(disable.error)}
            </p>
          ) : null}
          <div className="setup-actions">
            <button type="submit" className="secondary" disabled={disable.isPending}>
              {t.disableTwoFactor}
            </button>
          </div>
        </form>
      ) : enrolling ? (
        <TwoFactorEnrol onDone={() => setEnrolling(false)} />
      ) : (
        <>
          {disable.isSuccess ? (
            <p className="notice" role="status">
              {t.twoFactorDisabled}
            </p>
          ) : null}
          <div className="setup-actions">
            <button type="button" className="primary" onClick={() => setEnrolling(true)}>
              {t.enrolTwoFactor}
            </button>
          </div>
        </>
      )}
    </section>
  );
}

/** The clinic requires two-factor for this user's role and they have none yet: nothing else until it is set up. */
export function TwoFactorRequired({ onSignOut }: { onSignOut(): void }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <main className="setup" data-testid="two-factor-required">
      <div className="setup-card">
        <h1>{t.twoFactorTitle}</h1>
        <p>{t.twoFactorRequired}</p>
        <TwoFactorEnrol onDone={() => undefined} />
        <p className="signout-line">
          <button type="button" className="secondary" onClick={onSignOut}>
            {t.signOut}
          </button>
        </p>
      </div>
    </main>
  );
}
