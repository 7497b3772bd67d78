import { CodedError } from '../../../shared/errors';

const EQUALS = 61;

/** The 6-bit value of a base64 character (standard alphabet), or -1. */
function sextet(code: number): number {
  if (code >= 65 && code <= 90) return code - 65;
  if (code >= 97 && code <= 122) return code - 71;
  if (code >= 48 && code <= 57) return code + 4;
  if (code === 43) return 62;
  if (code === 47) return 63;
  return -1;
}

/**
 * A file the composer sent as base64 (`messages.sendMedia`), decoded once. `Buffer.from` skips
 * what is not base64 and stops at an inner `=`, so such text decodes to fewer bytes than its
 * length promises: the byte count is the check. The two ways left to reach the same count with
 * other text — the URL-safe alphabet (`-`, `_`, which Node also decodes) and stray bits in the
 * last character — are refused as well, so exactly the text that encodes back to itself (padding
 * optional) is accepted. Why not encode back and compare: that builds and compares a second 7 MB
 * string per 5 MB image (15-20 ms, more under load, and garbage for the collector).
 */
export function decodeFileBase64(text: string): Buffer {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === EQUALS) end -= 1;
  const tail = end % 4;
  const expected = Math.floor((end * 3) / 4);
  // Decoded straight into shared memory: the media writer thread reads these very bytes while the
  // upload sends them, where a plain buffer would be copied twice on its way there (5 MB each, on
  // the way to the file's commit, which the send waits for). Same decoder as `Buffer.from`.
  const bytes = Buffer.from(new SharedArrayBuffer(expected));
  const written = bytes.write(text, 'base64');
  const last = end > 0 ? sextet(text.charCodeAt(end - 1)) : 0;
  const strayBits = tail === 2 ? last & 0b1111 : tail === 3 ? last & 0b11 : 0;
  if (tail === 1 || last < 0 || strayBits !== 0 || written !== expected || text.includes('-') || text.includes('_')) {
    throw new CodedError('VALIDATION_FAILED', 'The file did not arrive as base64; choose it again.');
  }
  return bytes;
}
