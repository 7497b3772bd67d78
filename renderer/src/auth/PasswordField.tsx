import { PasswordRejectionSchema, type ErrorDetails } from '../../../shared/errors';
import { PASSWORD_MAX, PASSWORD_MIN_WITH_2FA, PASSWORD_MIN_WITHOUT_2FA } from '../../../shared/rpc';
import { useI18n, type Strings } from '../i18n';

/** Length the way the core counts it: code points after NFKC, so an emoji or an accent counts once. */
export function passwordLength(password: string): number {
  return [...password.normalize('NFKC')].length;
}

interface Props {
  id: string;
  label: string;
  value: string;
  onChange(value: string): void;
  /** Why the core refused the password (`rejectionOf`), shown under the field. */
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

/**
 * Why the core refused the password, in the reader's language (the rule comes as a reason code in
 * the error's details); null for any other failure.
 */
export function rejectionOf(t: Strings, err: unknown): string | null {
  const e = err as { code?: string; details?: ErrorDetails } | null;
  if (e?.code !== 'PASSWORD_REJECTED') return null;
  const reason = PasswordRejectionSchema.safeParse(e.details?.reason);
  if (!reason.success) return t.pwRejected;
  switch (reason.data) {
    case 'too_short':
      return t.pwTooShort(e.details?.min ?? PASSWORD_MIN_WITH_2FA);
    case 'too_long':
      return t.pwTooLong(e.details?.max ?? PASSWORD_MAX);
    case 'common':
      return t.pwCommon;
    case 'contains_name':
      return t.pwContainsName;
    case 'repeated':
      return t.pwRepeated;
    case 'unchanged':
      return t.pwUnchanged;
  }
}
