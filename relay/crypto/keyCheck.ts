/**
 * Public keys an appliance hands the relay at enrolment, checked before anything trusts them.
 *
 * X25519: a small-order key makes every shared secret all-zero (Node refuses the agreement, so
 * sealing to it throws); Ed25519: a small-order key lets one "universal" signature verify for any
 * message, so anyone who knows the appliance id could log in as it. Both lists are the ones
 * libsodium carries (`has_small_order` in x25519_ref10.c and ed25519_ref10.c), compared with the
 * top bit masked, as libsodium does; non-canonical encodings (a coordinate ≥ p) are refused too,
 * since an honest key generator never produces one. Keys are public, so none of this needs to be
 * constant time.
 */
import { diffieHellman } from 'node:crypto';
import { x25519PrivateFromRaw, x25519PublicFromRaw } from './hpke';

const P = 2n ** 255n - 19n;
/** Edwards d = -121665/121666 mod p. */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

const hex = (h: string) => Buffer.from(h, 'hex');
const PMINUS1 = `ec${'ff'.repeat(30)}7f`;
const PEQ = `ed${'ff'.repeat(30)}7f`;
const PPLUS1 = `ee${'ff'.repeat(30)}7f`;

/** u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519, and p/p+1 (≡ 0 and 1). */
export const X25519_SMALL_ORDER = [
  '00'.repeat(32),
  `01${'00'.repeat(31)}`,
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  PMINUS1,
  PEQ,
  PPLUS1,
].map(hex);

/** y-coordinates of the eight torsion points of edwards25519 (each with either sign of x), and p/p+1. */
export const ED25519_SMALL_ORDER = [
  '00'.repeat(32),
  `01${'00'.repeat(31)}`,
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  PMINUS1,
  PEQ,
  PPLUS1,
].map(hex);

/** Little-endian integer of 32 bytes with the top bit cleared (the coordinate without its sign/spare bit). */
function coordinate(raw: Uint8Array): bigint {
  let n = 0n;
  for (let i = 31; i >= 0; i -= 1) n = (n << 8n) | BigInt(i === 31 ? raw[i]! & 0x7f : raw[i]!);
  return n;
}

function matchesMasked(raw: Uint8Array, list: Buffer[]): boolean {
  return list.some((bad) => bad.subarray(0, 31).equals(raw.subarray(0, 31)) && (bad[31]! & 0x7f) === (raw[31]! & 0x7f));
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = base % P;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

/** A fixed scalar: any honest key gives a non-zero secret with it; a small-order one gives zero. */
const TEST_SCALAR = x25519PrivateFromRaw(Buffer.alloc(32, 0x2a));

/** Why this X25519 public key cannot be used, or null when it is fine. */
export function x25519PublicKeyProblem(raw: Uint8Array): string | null {
  if (raw.length !== 32) return 'is not 32 bytes';
  if (matchesMasked(raw, X25519_SMALL_ORDER)) return 'is a small-order point';
  if ((raw[31]! & 0x80) !== 0 || coordinate(raw) >= P) return 'is not canonically encoded';
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: TEST_SCALAR, publicKey: x25519PublicFromRaw(raw) });
  } catch {
    return 'gives no usable key agreement';
  }
  return shared.every((b) => b === 0) ? 'gives an all-zero shared secret' : null;
}

/** Why this Ed25519 public key cannot be used, or null when it is fine. */
export function ed25519PublicKeyProblem(raw: Uint8Array): string | null {
  if (raw.length !== 32) return 'is not 32 bytes';
  if (matchesMasked(raw, ED25519_SMALL_ORDER)) return 'is a small-order point';
  const y = coordinate(raw);
  if (y >= P) return 'is not canonically encoded';
  // On the curve: x² = (y² − 1) / (d·y² + 1) must have a square root (Euler's criterion).
  const y2 = (y * y) % P;
  const x2 = ((y2 - 1n + P) % P) * modPow((D * y2 + 1n) % P, P - 2n) % P;
  if (x2 !== 0n && modPow(x2, (P - 1n) / 2n) !== 1n) return 'is not a point on the curve';
  // x = 0 with the sign bit set is a second spelling of a point (only y = ±1, already refused above).
  if (x2 === 0n && (raw[31]! & 0x80) !== 0) return 'is not canonically encoded';
  return null;
}

/** Both of an appliance's keys; the first problem found names the key, never its value. */
export function applianceKeyProblem(keys: { signingPublicKey: Uint8Array; encryptionPublicKey: Uint8Array }): { key: 'signing' | 'encryption'; problem: string } | null {
  const signing = ed25519PublicKeyProblem(keys.signingPublicKey);
  if (signing) return { key: 'signing', problem: signing };
  const encryption = x25519PublicKeyProblem(keys.encryptionPublicKey);
  if (encryption) return { key: 'encryption', problem: encryption };
  return null;
}
