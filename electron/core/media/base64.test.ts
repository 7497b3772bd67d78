import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeFileBase64 } from './base64';

/** The check it replaces: decode, encode again, compare (trailing `=` ignored). */
function reference(text: string): Buffer | null {
  const strip = (s: string) => s.replace(/=+$/, '');
  const bytes = Buffer.from(text, 'base64');
  return strip(bytes.toString('base64')) === strip(text) ? bytes : null;
}

function attempt(text: string): Buffer | null {
  try {
    return decodeFileBase64(text);
  } catch {
    return null;
  }
}

describe('decodeFileBase64', () => {
  it('decodes base64 with or without padding', () => {
    const bytes = randomBytes(1000);
    for (const n of [1, 2, 3, 4, 999, 1000]) {
      const text = bytes.subarray(0, n).toString('base64');
      expect(decodeFileBase64(text).equals(bytes.subarray(0, n))).toBe(true);
      expect(decodeFileBase64(text.replace(/=+$/, '')).equals(bytes.subarray(0, n))).toBe(true);
    }
  });

  it('decodes into shared memory, which the media writer thread reads without a copy', () => {
    const bytes = randomBytes(3000);
    const decoded = decodeFileBase64(bytes.toString('base64'));
    expect(decoded.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(decoded.equals(bytes)).toBe(true);
  });

  it.each([
    ['a space inside', 'QUJD REVG'],
    ['a line break', 'QUJD\nREVG'],
    ['a trailing space', 'QQ== '],
    ['an inner =', 'QU=D'],
    ['two padded blocks', 'QQ==QQ=='],
    ['one character too many', 'QUJDR'],
    ['the URL-safe alphabet', '-_8='],
    ['stray bits in the last character', 'QR=='],
    ['stray bits before one =', 'QUJ='],
    ['a data URL prefix', 'data:image/jpeg;base64,QUJD'],
    ['not base64 at all', '{"file": "x.jpg"}'],
    ['non-ASCII', 'QUJDü'],
  ])('refuses %s with VALIDATION_FAILED', (_, text) => {
    expect(() => decodeFileBase64(text)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('accepts exactly what the encode-and-compare check accepted, on mutated text', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.é';
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5000; i += 1) {
      let text = randomBytes(1 + rand(12)).toString('base64');
      const edits = rand(3);
      for (let e = 0; e < edits; e += 1) {
        const at = rand(text.length + 1);
        const ch = alphabet[rand(alphabet.length)]!;
        text = rand(2) === 0 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      const want = reference(text);
      const got = attempt(text);
      expect({ text, accepted: got !== null }).toEqual({ text, accepted: want !== null });
      if (want && got) expect(got.equals(want)).toBe(true);
    }
  });
});
