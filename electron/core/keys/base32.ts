/** RFC 4648 base32, lower case: the installation id (it names keychain accounts and folders). */
export const BASE32_LOWER = 'abcdefghijklmnopqrstuvwxyz234567';
/** Crockford's base32: no I, L, O or U, so what a person reads aloud or types is unambiguous. */
export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Five bits per character; a last partial group is padded with zero bits (no `=` padding). */
export function encodeBase32(bytes: Uint8Array, alphabet: string): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** The bytes of `text`, or null when a character is not in `alphabet`; trailing partial bits are dropped. */
export function decodeBase32(text: string, alphabet: string): Buffer | null {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const index = alphabet.indexOf(ch);
    if (index < 0) return null;
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}
