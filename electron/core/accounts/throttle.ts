/**
 * Failed sign-ins slow down and then stop an attacker at the desk. Pure functions of the count
 * of failures in a row and the time of the last one, so the timing is tested with a clock.
 */

/** After this many failures in a row the account is locked. */
export const LOCKOUT_AFTER_FAILURES = 10;
/** …until an admin unlocks it or this much time passes. */
export const LOCKOUT_MS = 15 * 60_000;
/** Failures before the delay starts: a mistyped password or two costs nothing. */
const FREE_FAILURES = 2;
const MAX_DELAY_MS = 60_000;

/** How long after the last failure the next attempt is refused unchecked: 0, 0, 1 s, 2 s, 4 s … 60 s. */
export function delayAfterFailures(failures: number): number {
  if (failures <= FREE_FAILURES) return 0;
  return Math.min(MAX_DELAY_MS, 1000 * 2 ** (failures - FREE_FAILURES - 1));
}

/** Milliseconds to wait before another attempt is even checked; 0 when one may be made now. */
export function waitBeforeAttempt(failures: number, lastFailedAt: number | null, now: number): number {
  if (lastFailedAt === null) return 0;
  return Math.max(0, lastFailedAt + delayAfterFailures(failures) - now);
}

/** PINs are short, so they get few tries: then the password is needed. */
export const PIN_MAX_FAILURES = 5;
