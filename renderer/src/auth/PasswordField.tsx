import { PASSWORD_MIN_WITH_2FA, PASSWORD_MIN_WITHOUT_2FA } from '../../../shared/rpc';
import { useI18n } from '../i18n';

/** Length the way the core counts it: code points after NFKC, so an emoji or an accent counts once. */
export function passwordLength(password: string): number {
  return [...password.normalize('NFKC')].length;
}

interface Props {
  id: string;
  label: string;
  value: string;
  onChange(value: string): void;
  /** The core's PASSWORD_REJECTED message (which names the rule), shown under the field. */
  rejection: string | null;
  /** Two-factor on: the shorter minimum applies. */
  withTwoFactor: boolean;
}

/**
 * A new password: the policy in words (length only, passphrases welcome, no composition rules),
 * a live length hint that screen readers hear, and the core's refusal next to the field.
 */
export function NewPasswordField({ id, label, value, onChange, rejection, withTwoFactor }: Props): React.JSX.Element {
  const { t } = useI18n();
  const min = withTwoFactor ? PASSWORD_MIN_WITH_2FA : PASSWORD_MIN_WITHOUT_2FA;
  const n = passwordLength(value);
  const describedBy = [`${id}-policy`, `${id}-length`, rejection ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="password"
        required
        autoComplete="new-password"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={describedBy}
        aria-invalid={rejection ? true : undefined}
      />
      <p id={`${id}-policy`} className="help">
        {t.passwordPolicy}
      </p>
      <div className="password-length">
        <meter min={0} max={min} value={Math.min(n, min)} aria-labelledby={`${id}-length`} />
        <p id={`${id}-length`} className="help" aria-live="polite" data-testid="password-length">
          {t.passwordLength(n, min)}
        </p>
      </div>
      {rejection ? (
        <p id={`${id}-error`} className="form-error" role="alert" data-testid="password-rejected">
          {rejection}
        </p>
      ) : null}
    </div>
  );
}

/** The core's message when it refused the password for the policy; null for any other failure. */
export function rejectionOf(err: unknown): string | null {
  const e = err as { code?: string; message?: string } | null;
  return e?.code === 'PASSWORD_REJECTED' ? (e.message ?? null) : null;
}
