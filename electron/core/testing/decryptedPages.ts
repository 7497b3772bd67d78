import { createDecipheriv } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/** SQLCipher 4 keeps an IV (16 bytes) and an HMAC-SHA512 (64) at the end of every page. */
export const RESERVE = 80;

/**
 * Every page of the database file (and WAL frames, if any), decrypted with the database key, as
 * SQLCipher 4 stores them with a raw key: AES-256-CBC under the key itself, IV in the page's
 * reserved tail, page 1's first 16 bytes the (plain) salt. Freed pages are decrypted too: a scan of
 * these is what proves nothing of the patient lingers anywhere in the file, which the encrypted
 * bytes alone could never show.
 */
export function decryptedPages(path: string, key: Buffer, pageSize: number): Buffer[] {
  const decrypt = (page: Buffer, first: boolean): Buffer => {
    const usable = page.length - RESERVE;
    const d = createDecipheriv('aes-256-cbc', key, page.subarray(usable, usable + 16));
    d.setAutoPadding(false);
    return Buffer.concat([d.update(page.subarray(first ? 16 : 0, usable)), d.final()]);
  };
  const file = readFileSync(path);
  const pages: Buffer[] = [];
  for (let at = 0; at + pageSize <= file.length; at += pageSize) pages.push(decrypt(file.subarray(at, at + pageSize), at === 0));
  const wal = `${path}-wal`;
  if (existsSync(wal)) {
    const frames = readFileSync(wal);
    // 32-byte WAL header, then frames of a 24-byte header and one page.
    for (let at = 32; at + 24 + pageSize <= frames.length; at += 24 + pageSize) pages.push(decrypt(frames.subarray(at + 24, at + 24 + pageSize), frames.readUInt32BE(at) === 1));
  }
  return pages;
}

