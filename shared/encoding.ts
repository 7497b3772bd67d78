import { z } from 'zod';

/** base64url without padding, as used for every key, nonce and ciphertext on the wire. */
export const Base64UrlSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]*$/, 'expected base64url without padding');

/** A 32-byte key (Ed25519 or X25519 public key) as base64url: 43 characters. */
export const Key32Schema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/, 'expected a 32-byte key as base64url');

/** Opaque identifiers the relay hands out: lowercase letters, digits and dashes. */
export const IdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'expected an id of lowercase letters, digits and dashes');

/** Milliseconds since the Unix epoch, UTC. */
export const EpochMsSchema = z.number().int().nonnegative();
