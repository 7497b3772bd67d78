import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { keys } from '../data/queries';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { codeOf } from './errors';
import { AUTH_META } from './session';

/** The SVG as a data: URL: the CSP allows data: images and forbids inline SVG styles. */
function svgDataUrl(svg: string): string {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

/** The secret in groups of four, for typing it into an app without a camera. */
export function groupSecret(secret: string): string {
  return (secret.match(/.{1,4}/g) ?? []).join(' ');
}

/**
 * Two-factor enrolment: the password → a QR code and the secret → one code from the app → the ten
 * recovery codes, shown once, with Print and Copy, closed only after "I stored them".
 */
export function TwoFactorEnrol({ onDone }: { onDone(): void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [stored, setStored] = useState(false);
  const [copied, setCopied] = useState(false);
  const begin = useMutation({ meta: AUTH_META, mutationFn: () => rpc.call('auth.twoFactor.begin', { password }), onSuccess: () => setPassword('') });
  const confirm = useMutation({ meta: AUTH_META, mutationFn: () => rpc.call('auth.twoFactor.confirm', { code: code.replace(/\s+/g, '') }) });
  const codes = confirm.data?.recoveryCodes;

  if (codes) {
    return (
      <div className="recovery-codes-block" data-testid="recovery-codes">
        <h3>{t.recoveryCodesTitle}</h3>
        <p className="help">{t.recoveryCodesIntro}</p>
        <ol className="recovery-codes mono">
          {codes.map((c) => (
            <li key={c}>{c}</li>
          ))}
        </ol>
        <div className="field checkbox">
          <input id="codes-stored" type="checkbox" checked={stored} onChange={(e) => setStored(e.target.checked)} />
          <label htmlFor="codes-stored">{t.recoveryCodesStored}</label>
        </div>
        <div className="setup-actions">
          <button type="button" className="secondary" onClick={() => window.print()}>
            {t.print}
          </button>
          <button
            type="button"
            className="secondary"
            onClick={() => void navigator.clipboard.writeText(codes.join('\n')).then(() => setCopied(true), () => setCopied(false))}
          >
            {copied ? t.copied : t.copy}
          </button>
          <button
            type="button"
            className="primary"
            disabled={!stored}
            onClick={() => {
              void qc.invalidateQueries({ queryKey: keys.whoami });
              onDone();
            }}
          >
            {t.done}
          </button>
        </div>
      </div>
    );
  }

  if (begin.data) {
    const { qrSvg, secret } = begin.data;
    return (
      <form
        className="two-factor-scan"
        onSubmit={(e) => {
          e.preventDefault();
          confirm.mutate();
        }}
      >
        <p>{t.scanQr}</p>
        <img className="qr" src={svgDataUrl(qrSvg)} alt={t.qrAlt} width={200} height={200} data-testid="totp-qr" />
        <p className="help">{t.secretLabel}</p>
        <p className="mono totp-secret" data-testid="totp-secret">
          {groupSecret(secret)}
        </p>
        <div className="field">
          <label htmlFor="totp-code">{t.enterCode}</label>
          <input
            id="totp-code"
            required
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="\s*(\d\s*){6}"
            className="mono"
            value={code}
            onChange={(e) => setCode(e.target.value)}
          />
        </div>
        {confirm.isError ? (
          <p className="form-error" role="alert">
            {codeOf(confirm.error) === 'SECOND_FACTOR_INVALID' ? t.codeWrong : errorText(confirm.error)}
          </p>
        ) : null}
        <div className="setup-actions">
          <button type="submit" className="primary" disabled={confirm.isPending}>
            {t.confirmCode}
          </button>
        </div>
      </form>
    );
  }

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        begin.mutate();
      }}
    >
      <div className="field">
        <label htmlFor="totp-password">{t.confirmWithPassword}</label>
        <input id="totp-password" type="password" required autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </div>
      {begin.isError ? (
        <p className="form-error" role="alert">
          {codeOf(begin.error) === 'UNAUTHENTICATED' ? t.wrongPassword : errorText(begin.error)}
        </p>
      ) : null}
      <div className="setup-actions">
        <button type="submit" className="primary" disabled={begin.isPending}>
          {t.enrolTwoFactor}
        </button>
      </div>
    </form>
  );
}
