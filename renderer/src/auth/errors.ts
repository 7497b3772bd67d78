import type { Strings } from '../i18n';

/** What a failed sign-in or unlock means for the person at the desk, in their language. */
export function signInErrorText(t: Strings, err: unknown, fallback: (err: unknown) => string): string {
  const { code, message = '' } = (err ?? {}) as { code?: string; message?: string };
  const number = (re: RegExp): number | null => {
    const m = re.exec(message);
    return m ? Number(m[1]) : null;
  };
  switch (code) {
    case 'UNAUTHENTICATED':
      return t.signInWrong;
    case 'RATE_LIMITED': {
      const s = number(/(\d+)\s*s\b/);
      return s === null ? message : t.signInWait(s);
    }
    case 'ACCOUNT_LOCKED':
      return t.accountLocked(number(/(\d+)\s*min\b/));
    case 'FORBIDDEN':
      return t.accountDisabled;
    case 'SECOND_FACTOR_INVALID':
      return t.codeWrong;
    default:
      return fallback(err);
  }
}

export function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}
