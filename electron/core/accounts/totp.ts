import { randomBytes, createHash } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';

/** RFC 6238: 30-second steps, 6 digits, SHA-1 (what every authenticator app reads). */
const PERIOD = 30;
function totpFor(secret: string, label: string): TOTP {
  return new TOTP({ issuer: 'Clinic Inbox', label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) });
}

export interface TotpEnrolment {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

/** A new secret (160 bits) as text, as an otpauth:// URI, and as a QR code the app draws (SVG, no network). */
export async function newTotpEnrolment(label: string): Promise<TotpEnrolment> {
  const secret = new Secret({ size: 20 }).base32;
  const otpauthUri = totpFor(secret, label).toString();
  const qrSvg = await QRCode.toString(otpauthUri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return { secret, otpauthUri, qrSvg };
}

/**
 * Checks a code against the current step and one either side (clock drift). Returns the step it
 * matched, which must be later than the last one accepted: a code is accepted once.
 */
export function checkTotp(secret: string, code: string, now: number, lastStep: number | null): number | null {
  const delta = totpFor(secret, 'check').validate({ token: code.replace(/\s+/g, ''), timestamp: now, window: 1 });
  if (delta === null) return null;
  const step = Math.floor(now / 1000 / PERIOD) + delta;
  if (lastStep !== null && step <= lastStep) return null;
  return step;
}

/** The code an authenticator app would show at `now` (tests, the demo). */
export function totpCodeAt(secret: string, now: number): string {
  return totpFor(secret, 'code').generate({ timestamp: now });
}

const CODE_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
/** Ten single-use recovery codes (`xxxx-xxxx`, about 40 bits each) and their hashes to keep. */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: 10 }, () => {
    const bytes = randomBytes(8);
    const chars = [...bytes].map((b) => CODE_ALPHABET[b % CODE_ALPHABET.length]).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}`;
  });
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

/** Recovery codes are random, so a fast hash suffices; case and dashes don't matter when typed. */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(code.toLowerCase().replace(/[^a-z0-9]/g, '')).digest('hex');
}
