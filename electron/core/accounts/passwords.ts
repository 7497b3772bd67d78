import { hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { CodedError, type PasswordRejection } from '../../../shared/errors';
import { PASSWORD_MAX, PASSWORD_MIN_WITH_2FA, PASSWORD_MIN_WITHOUT_2FA } from '../../../shared/rpc';

/**
 * Passwords and PINs, hashed with argon2id (RFC 9106; OWASP's first choice). The parameters are
 * well above OWASP's minimum (19 MiB, t=2) so one guess costs about a quarter of a second on a
 * desk PC: strong against a stolen database, yet no wait at the desk. They travel inside the PHC
 * string, so older hashes keep verifying and are upgraded at the next sign-in.
 */
/** `algorithm: 2` is `Algorithm.Argon2id` (a const enum, which this build cannot import). */
export const ARGON2_PARAMS = { algorithm: 2, memoryCost: 64 * 1024, timeCost: 12, parallelism: 1 } as const;

/** Sign-ins are rare; one hash at a time keeps 64 MiB per attempt from adding up under a flood. */
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

/** NFKC, so the same passphrase typed on another keyboard or OS matches (NIST SP 800-63B-4 §3.1.1.2). */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

export interface HashCost {
  memoryCost: number;
  timeCost: number;
}

export function hashSecret(secret: string, cost: HashCost = ARGON2_PARAMS): Promise<string> {
  return oneAtATime(() => hash(normalizePassword(secret), { ...ARGON2_PARAMS, ...cost }));
}

/** Constant-time inside argon2; a malformed stored hash counts as a mismatch. */
export function verifySecret(stored: string, secret: string): Promise<boolean> {
  return oneAtATime(() => verify(stored, normalizePassword(secret)).catch(() => false));
}

/** Whether a stored hash uses weaker parameters than today's (then it is replaced after a good sign-in). */
export function needsRehash(stored: string, cost: HashCost = ARGON2_PARAMS): boolean {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  return !m || Number(m[1]) < cost.memoryCost || Number(m[2]) < cost.timeCost;
}

const COMMON = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
/** How many common passwords are refused (the list ships with the app). */
export const COMMON_PASSWORD_COUNT = COMMON.size;

export interface PolicyContext {
  username: string;
  displayName?: string;
  clinicName?: string;
  /** The account has a second factor, so 8 characters suffice. */
  hasSecondFactor: boolean;
}

/** A refusal: the rule broken (for a window to word in its language) and the core's own sentence. */
export interface PasswordProblem {
  reason: PasswordRejection;
  message: string;
  min?: number;
  max?: number;
}

/**
 * NIST SP 800-63B-4: length counts (in code points, after NFKC), every character is allowed,
 * no composition rules; refuse known-common passwords and ones built from the account's own names.
 * Returns the rule broken, or null when the password is acceptable.
 */
export function passwordRejection(password: string, ctx: PolicyContext): PasswordProblem | null {
  const normal = normalizePassword(password);
  const length = [...normal].length;
  const min = ctx.hasSecondFactor ? PASSWORD_MIN_WITH_2FA : PASSWORD_MIN_WITHOUT_2FA;
  if (length < min) {
    return {
      reason: 'too_short',
      min,
      message: ctx.hasSecondFactor
        ? `Use at least ${min} characters.`
        : `Use at least ${min} characters (or ${PASSWORD_MIN_WITH_2FA} once two-factor sign-in is on). A few words make a good passphrase.`,
    };
  }
  if (length > PASSWORD_MAX) return { reason: 'too_long', max: PASSWORD_MAX, message: `Use at most ${PASSWORD_MAX} characters.` };
  const lower = normal.toLowerCase();
  if (COMMON.has(lower) || COMMON.has(lower.replace(/[\s\d!?.]+$/u, ''))) return { reason: 'common', message: 'This password is among the most common ones; choose another.' };
  const names = [ctx.username, ctx.displayName, ctx.clinicName]
    .filter((n): n is string => !!n && n.trim().length >= 3)
    .map((n) => n.normalize('NFKC').toLowerCase().trim());
  for (const n of names) {
    if (lower.includes(n) || lower.replace(/\s+/g, '').includes(n.replace(/\s+/g, ''))) {
      return { reason: 'contains_name', message: 'The password may not contain your username, your name or the clinic’s name.' };
    }
  }
  if (/^(.)\1+$/u.test(normal)) return { reason: 'repeated', message: 'A password of one repeated character is too easy to guess.' };
  return null;
}

/** The refusal as the core words it (English), or null when the password is acceptable. */
export function passwordProblem(password: string, ctx: PolicyContext): string | null {
  return passwordRejection(password, ctx)?.message ?? null;
}

/** The PASSWORD_REJECTED error for a refusal, its reason machine-readable in the details. */
export function passwordRejectedError(problem: PasswordProblem): CodedError {
  const { message, ...details } = problem;
  return new CodedError('PASSWORD_REJECTED', message, details);
}
