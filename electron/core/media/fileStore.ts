// Large outgoing files as encrypted files beside the database, in `<dataDir>/media/`. A 5 MB image
// committed into SQLCipher costs ~1,280 pages to encrypt and HMAC and 5 MB of WAL to fsync (then
// the same again at the checkpoint); as one AES-256-GCM file it is one pass over the bytes and one
// fsync. The file alone is worthless: its key is 32 random bytes kept only in its media row, inside
// the encrypted database, so deleting the row (secure_delete) erases the file even if it lingers.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CodedError } from '../../../shared/errors';

/**
 * Files from this size on go to a file. Below it the database commit is cheap (64 pages at 256
 * KiB, a few ms) and a file would add its own fsyncs (file and folder) and a directory entry per
 * file; the composer's photos and PDFs are mostly above it, stickers and small images below.
 */
export const FILE_THRESHOLD = 256 * 1024;

/** "CIM" and format version 1; part of the AAD, so another version's file never opens as this one. */
const MAGIC = Buffer.from([0x43, 0x49, 0x4d, 0x01]);
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + NONCE_BYTES;
const TEMP_SUFFIX = '.tmp';
const NAME = /^[0-9a-f]{32}$/;

/** A file written before its row's commit, or whose unlink a crash cut short, is removed after this. */
export const SWEEP_GRACE_MS = 60 * 60 * 1000;

export const mediaDirOf = (databasePath: string): string => join(dirname(databasePath), 'media');

/** The header and the media row's id: a file moved to another row (or another format) fails to open. */
function aad(mediaRowId: number): Buffer {
  const id = Buffer.alloc(8);
  id.writeBigUInt64BE(BigInt(mediaRowId));
  return Buffer.concat([MAGIC, id]);
}

function fsyncPath(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    // Windows cannot open a folder to fsync it; NTFS journals the rename itself.
    if (process.platform === 'win32') return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface StoredFile {
  fileName: string;
  fileKey: Buffer;
}

/**
 * Encrypts `bytes` under a fresh key into a new file and returns once the file and its name are on
 * the disk (temp name, fsync, rename, fsync of the folder). Synchronous: it runs on the writer
 * thread (or, as a fallback, on the core's).
 */
export function writeMediaFile(dir: string, mediaRowId: number, bytes: Uint8Array): StoredFile {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fileName = randomBytes(16).toString('hex');
  const fileKey = randomBytes(32);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', fileKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(mediaRowId));
  const parts = [MAGIC, nonce, cipher.update(bytes), cipher.final()];
  parts.push(cipher.getAuthTag());
  const temp = join(dir, fileName + TEMP_SUFFIX);
  let fd: number | null = openSync(temp, 'wx', 0o600);
  try {
    for (const part of parts) for (let at = 0; at < part.length; ) at += writeSync(fd, part, at);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temp, join(dir, fileName));
  } catch (err) {
    if (fd !== null) closeSync(fd);
    unlinkQuietly(temp);
    throw err;
  }
  fsyncPath(dir);
  return { fileName, fileKey };
}

const unreadable = (mediaRowId: number, why: string) =>
  new CodedError('INTERNAL', `The file of media ${mediaRowId} on this computer ${why}; it cannot be shown, sent or backed up. Restore it from a backup.`);

/** The bytes of a file written by `writeMediaFile` for this row; throws rather than return bytes that are not exactly those. */
export function readMediaFile(dir: string, mediaRowId: number, fileName: string, fileKey: Uint8Array): Buffer {
  if (!NAME.test(fileName)) throw unreadable(mediaRowId, 'has an invalid name');
  let data: Buffer;
  try {
    data = readFileSync(join(dir, fileName));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw unreadable(mediaRowId, 'is missing');
    throw unreadable(mediaRowId, `could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (data.length < HEADER_BYTES + TAG_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw unreadable(mediaRowId, 'is damaged');
  try {
    const decipher = createDecipheriv('aes-256-gcm', fileKey, data.subarray(MAGIC.length, HEADER_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(mediaRowId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    const plain = decipher.update(data.subarray(HEADER_BYTES, data.length - TAG_BYTES));
    decipher.final();
    return plain;
  } catch {
    throw unreadable(mediaRowId, 'is damaged or was altered');
  }
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes these files (names from rows already deleted and committed) and returns the names that
 * are gone now (a missing file counts as gone); one that cannot be removed (a virus scanner holding
 * it, say) is left out, to be tried again.
 */
export function unlinkMediaFiles(dir: string, names: readonly string[]): string[] {
  const gone = names.filter((name) => {
    if (!NAME.test(name)) return true;
    try {
      unlinkQuietly(join(dir, name));
      return true;
    } catch {
      return false;
    }
  });
  if (gone.length > 0) fsyncPath(dir);
  return gone;
}

/**
 * Removes the files no row names (a crash between a file's fsync and its row's commit, a restore
 * of a backup, whose rows hold their bytes inline) and leftover temp files, once older than
 * `graceMs`, so a write under way is never taken.
 */
export function sweepMediaFiles(dir: string, isReferenced: (fileName: string) => boolean, now: number, graceMs = SWEEP_GRACE_MS): number {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const entry of entries) {
    const name = entry.endsWith(TEMP_SUFFIX) ? entry.slice(0, -TEMP_SUFFIX.length) : entry;
    if (!NAME.test(name) || (entry === name && isReferenced(name))) continue;
    const path = join(dir, entry);
    let mtime: number;
    try {
      mtime = statSync(path).mtimeMs;
    } catch {
      continue;
    }
    if (now - mtime >= graceMs && unlinkQuietly(path)) removed += 1;
  }
  if (removed > 0) fsyncPath(dir);
  return removed;
}
