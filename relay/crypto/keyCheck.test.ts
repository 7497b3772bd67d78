import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateX25519KeyPair } from './hpke';
import { ED25519_SMALL_ORDER, ed25519PublicKeyProblem, X25519_SMALL_ORDER, x25519PublicKeyProblem } from './keyCheck';

const withTopBit = (b: Buffer) => {
  const c = Buffer.from(b);
  c[31]! |= 0x80;
  return c;
};

describe('appliance public key checks', () => {
  it('refuses every small-order X25519 u-coordinate, with or without the top bit, and non-canonical ones', () => {
    for (const k of [...X25519_SMALL_ORDER, ...X25519_SMALL_ORDER.map(withTopBit)]) expect(x25519PublicKeyProblem(k)).toBe('is a small-order point');
    // u = p + 2 (≡ 2), and a canonical key with the spare top bit set.
    expect(x25519PublicKeyProblem(Buffer.from(`ef${'ff'.repeat(30)}7f`, 'hex'))).toBe('is not canonically encoded');
    expect(x25519PublicKeyProblem(withTopBit(generateX25519KeyPair().publicRaw))).toBe('is not canonically encoded');
    expect(x25519PublicKeyProblem(Buffer.alloc(31))).toBe('is not 32 bytes');
  });

  it('refuses the eight Ed25519 torsion points in every encoding, y ≥ p, and points off the curve', () => {
    for (const k of [...ED25519_SMALL_ORDER, ...ED25519_SMALL_ORDER.map(withTopBit)]) expect(ed25519PublicKeyProblem(k)).toBe('is a small-order point');
    expect(ed25519PublicKeyProblem(Buffer.from(`ef${'ff'.repeat(30)}7f`, 'hex'))).toBe('is not canonically encoded');
    const y2 = Buffer.alloc(32);
    y2[0] = 2;
    expect(ed25519PublicKeyProblem(y2)).toBe('is not a point on the curve');
  });

  it('accepts freshly generated keys', () => {
    for (let i = 0; i < 200; i += 1) {
      const ed = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
      expect(ed25519PublicKeyProblem(ed)).toBeNull();
      expect(x25519PublicKeyProblem(generateX25519KeyPair().publicRaw)).toBeNull();
    }
  });
});
