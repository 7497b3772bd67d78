import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * Meta's `X-Hub-Signature-256` checked on the appliance itself: HMAC-SHA256 keyed with the Meta
 * app secret over the exact bytes Meta sent. The relay checks the same signature at intake; this
 * second check means an envelope that opens under the pinned relay key but whose body Meta never
 * signed (a forged or altered delivery) does not reach the inbox.
 */

/** The secrets as `KeyObject`s: they never print (a stray log of one shows `{}`), and are parsed once. */
export type AppSecretKeys = readonly KeyObject[];

const HEADER_RE = /^sha256=([0-9a-f]{64})$/;

/**
 * The active app secrets as stored in the keychain entry: a JSON array of 32-hex-character strings
 * (several while Meta rotates the secret). The keychain is outside this process, so it is parsed.
 */
export const StoredAppSecretsSchema = z.array(z.string().regex(/^[0-9a-f]{32}$/)).min(1).max(3);

export function appSecretKeys(secrets: readonly string[]): AppSecretKeys {
  return secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
}

/**
 * True when `header` is a valid signature of `rawBody` under any of the secrets. Every secret is
 * tried, without an early exit, and each comparison is constant-time, so timing says neither how
 * much of the signature matched nor which secret did.
 */
export function verifyMetaSignature(secrets: AppSecretKeys, rawBody: Buffer, header: string): boolean {
  const m = HEADER_RE.exec(header);
  if (!m || secrets.length === 0) return false;
  const given = Buffer.from(m[1]!, 'hex');
  let ok = false;
  for (const key of secrets) {
    if (timingSafeEqual(createHmac('sha256', key).update(rawBody).digest(), given)) ok = true;
  }
  return ok;
}
