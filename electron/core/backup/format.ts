import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { z } from 'zod';
import { BACKUP_FILE_EXTENSION } from '../../../shared/dialogs';
import { Base64UrlSchema } from '../../../shared/encoding';
import { CodedError } from '../../../shared/errors';
import type { Database } from '../db/types';

/**
 * The backup file, format version 1: ONE file that a new computer restores from with the
 * recovery key alone.
 *
 *     [ snapshot: a SQLCipher 4 database keyed with the backup key (N bytes) ]
 *     [ trailer: JSON, L bytes ][ L: uint32 big-endian ][ "CIBACKUP" ]
 *
 * The snapshot is `VACUUM INTO` of the live database (a consistent read transaction, never a copy
 * of the live file), written already encrypted, then rekeyed from the database key to the backup
 * key: no plaintext page ever reaches a disk. SQLCipher authenticates every page (HMAC-SHA512), so
 * a flipped bit anywhere is a refusal, not a silently wrong message.
 *
 * The trailer's `outer` part is readable without a key (what a person needs to pick a file: which
 * installation, when, which schema) and authenticated as the AAD of `sealed`, AES-256-GCM under a
 * key derived from the backup key, which holds the row counts per table and the SHA-256 content
 * hash of the snapshot. It also carries the wrapped backup key (under the database key) and the
 * recovery-key file (the database and device keys under the recovery key): recovery key →
 * database and device keys → backup key → snapshot.
 */
export const BACKUP_FORMAT = 'clinic-inbox-backup';
export const BACKUP_FORMAT_VERSION = 1;
export const BACKUP_EXTENSION = `.${BACKUP_FILE_EXTENSION}`;
const MAGIC = Buffer.from('CIBACKUP', 'latin1');
const FOOTER_BYTES = 4 + MAGIC.length;
const MAX_TRAILER_BYTES = 1 << 20;

const WrappedSchema = z.object({ salt: Base64UrlSchema, iv: Base64UrlSchema, data: Base64UrlSchema });
export type Wrapped = z.infer<typeof WrappedSchema>;

export const OuterHeaderSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.number().int(),
  installationId: z.string().regex(/^[a-z0-9]{26}$/),
  createdAt: z.number().int(),
  schemaVersion: z.number().int().nonnegative(),
  snapshotBytes: z.number().int().positive(),
  /** The backup key under the database key. */
  backupKey: WrappedSchema,
  /** `recovery-key.json` as it was when the backup was made; null when no recovery key existed yet. */
  recovery: z.record(z.string(), z.unknown()).nullable(),
});
export type OuterHeader = z.infer<typeof OuterHeaderSchema>;

export const SealedHeaderSchema = z.object({
  rowCounts: z.record(z.string(), z.number().int().nonnegative()),
  /** `plaintextImageHash` of the snapshot part. */
  contentHash: z.string().regex(/^[0-9a-f]{64}$/),
  integrity: z.literal('ok'),
});
export type SealedHeader = z.infer<typeof SealedHeaderSchema>;

const TrailerSchema = z.object({ outer: z.unknown(), sealed: z.object({ iv: Base64UrlSchema, data: Base64UrlSchema }) });

const damaged = (what: string): CodedError =>
  new CodedError('VALIDATION_FAILED', `This backup file is damaged or incomplete (${what}); it cannot be restored. Nothing was changed.`);

function hkdf(key: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, Buffer.from(info), 32));
}

function seal(key: Buffer, iv: Buffer, plain: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

function open(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

const WRAP_INFO = 'clinic-inbox backup key wrap v1';

/** The backup key wrapped under the database key (bound to the installation). */
export function wrapBackupKey(backupKey: Buffer, databaseKey: Buffer, installationId: string): Wrapped {
  const salt = randomBytes(32);
  const iv = randomBytes(12);
  const data = seal(hkdf(databaseKey, salt, WRAP_INFO), iv, backupKey, Buffer.from(`${BACKUP_FORMAT}/key/${installationId}`));
  return { salt: salt.toString('base64url'), iv: iv.toString('base64url'), data: data.toString('base64url') };
}

/** Null when this database key did not wrap it (another installation, or a damaged header). */
export function unwrapBackupKey(wrapped: Wrapped, databaseKey: Buffer, installationId: string): Buffer | null {
  try {
    const key = open(
      hkdf(databaseKey, Buffer.from(wrapped.salt, 'base64url'), WRAP_INFO),
      Buffer.from(wrapped.iv, 'base64url'),
      Buffer.from(wrapped.data, 'base64url'),
      Buffer.from(`${BACKUP_FORMAT}/key/${installationId}`),
    );
    return key.length === 32 ? key : null;
  } catch {
    return null;
  }
}

const sealKey = (backupKey: Buffer) => hkdf(backupKey, Buffer.alloc(0), 'clinic-inbox backup header v1');

/** The trailer to append after the snapshot. */
export function encodeTrailer(outer: OuterHeader, sealed: SealedHeader, backupKey: Buffer): Buffer {
  const iv = randomBytes(12);
  const aad = Buffer.from(JSON.stringify(outer));
  const data = seal(sealKey(backupKey), iv, Buffer.from(JSON.stringify(sealed)), aad);
  const json = Buffer.from(JSON.stringify({ outer, sealed: { iv: iv.toString('base64url'), data: data.toString('base64url') } }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([json, length, MAGIC]);
}

export interface ReadTrailer {
  outer: OuterHeader;
  /** Opens the sealed part with the backup key; throws when it was altered or the key is not this backup's. */
  unseal(backupKey: Buffer): SealedHeader;
  /** File size, to tell a truncated file. */
  fileBytes: number;
}

/** Reads the trailer without a key. Refuses a file that is not a backup, truncated or altered in its header. */
export function readTrailer(path: string): ReadTrailer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CodedError('NOT_FOUND', 'There is no backup file at that path.');
    throw new CodedError('VALIDATION_FAILED', 'The backup file could not be read.');
  }
  try {
    const size = fstatSync(fd).size;
    if (size < FOOTER_BYTES) throw damaged('too short');
    const footer = Buffer.alloc(FOOTER_BYTES);
    readSync(fd, footer, 0, FOOTER_BYTES, size - FOOTER_BYTES);
    if (!footer.subarray(4).equals(MAGIC)) throw damaged('no backup trailer at its end: not a Clinic Inbox backup, or cut short');
    const length = footer.readUInt32BE(0);
    if (length > MAX_TRAILER_BYTES || length > size - FOOTER_BYTES) throw damaged('trailer length');
    const json = Buffer.alloc(length);
    readSync(fd, json, 0, length, size - FOOTER_BYTES - length);
    let parsed: z.infer<typeof TrailerSchema>;
    let outer: OuterHeader;
    try {
      parsed = TrailerSchema.parse(JSON.parse(json.toString('utf8')));
      outer = OuterHeaderSchema.parse(parsed.outer);
    } catch {
      throw damaged('unreadable header');
    }
    if (outer.version > BACKUP_FORMAT_VERSION) {
      throw new CodedError('DATABASE_TOO_NEW', `This backup was written in backup format ${outer.version}; this version of Clinic Inbox reads up to ${BACKUP_FORMAT_VERSION}. Nothing was changed.`);
    }
    if (outer.snapshotBytes + length + FOOTER_BYTES !== size) throw damaged('its length does not match its header');
    const aad = Buffer.from(JSON.stringify(parsed.outer));
    return {
      outer,
      fileBytes: size,
      unseal(backupKey) {
        try {
          const plain = open(sealKey(backupKey), Buffer.from(parsed.sealed.iv, 'base64url'), Buffer.from(parsed.sealed.data, 'base64url'), aad);
          return SealedHeaderSchema.parse(JSON.parse(plain.toString('utf8')));
        } catch {
          throw damaged('its header does not authenticate: altered');
        }
      },
    };
  } finally {
    closeSync(fd);
  }
}

/** Tables whose rows are this computer's bookkeeping about backups, not the clinic's data. */
const NOT_CONTENT = new Set(['backup_runs']);

/** The tables a backup holds and hashes: every real table (FTS shadow tables too), not the virtual ones. */
export function contentTables(db: Database): { name: string; withoutRowid: boolean; pk: string[] }[] {
  const rows = db.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string; sql: string | null }[];
  return rows
    .filter((r) => !/^CREATE VIRTUAL/i.test(r.sql ?? '') && !NOT_CONTENT.has(r.name))
    .map((r) => {
      const info = db.prepare(`SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`).all(r.name) as { name: string }[];
      return { name: r.name, withoutRowid: /WITHOUT\s+ROWID/i.test(r.sql ?? ''), pk: info.map((c) => c.name) };
    });
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Rows per content table (what a backup header carries and a restore checks). */
export function rowCounts(db: Database): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const table of contentTables(db)) counts[table.name] = db.prepare(`SELECT count(*) FROM ${quote(table.name)}`).pluck().get() as number;
  return counts;
}

/** SQLCipher 4 keeps each page's IV (16 bytes) and HMAC-SHA512 (64) in its reserved tail. */
const SQLCIPHER_RESERVE = 80;
const CHUNK_PAGES = 256;

/**
 * SHA-256 of the plaintext snapshot: every page of the SQLCipher 4 file decrypted with its raw key
 * (AES-256-CBC under the key, the IV in the page's reserved tail; page 1 without its plain 16-byte
 * salt) and hashed in order, reserved tails excluded. Read in 1 MB chunks and decrypted and hashed
 * by node's OpenSSL, so it costs about a file read and memory stays flat. SQLCipher itself checks
 * each page's HMAC (in `integrity_check`); this hash binds the whole snapshot, in order and
 * complete, to the authenticated header.
 */
export function plaintextImageHash(path: string, key: Buffer, pageSize: number, bytes?: number): string {
  const fd = openSync(path, 'r');
  try {
    const total = bytes ?? fstatSync(fd).size;
    if (total % pageSize !== 0) throw damaged('not whole pages');
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(pageSize * CHUNK_PAGES);
    const usable = pageSize - SQLCIPHER_RESERVE;
    for (let at = 0; at < total; at += chunk.length) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, total - at), at);
      for (let off = 0; off < n; off += pageSize) {
        const first = at + off === 0;
        const decipher = createDecipheriv('aes-256-cbc', key, chunk.subarray(off + usable, off + usable + 16));
        decipher.setAutoPadding(false);
        const plain = Buffer.concat([decipher.update(chunk.subarray(off + (first ? 16 : 0), off + usable)), decipher.final()]);
        // Page 1's header (bytes 16–17: page size; 20: reserved bytes) says whether the key was right.
        if (first && (plain.readUInt16BE(0) !== (pageSize === 65536 ? 1 : pageSize) || plain[4] !== SQLCIPHER_RESERVE)) throw damaged('its first page does not decrypt');
        hash.update(plain);
      }
    }
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/**
 * SHA-256 over every content table's rows in key order, with the row count of each: equal for two
 * databases exactly when they hold the same data, whatever their page layout or key (the tests'
 * check that a restore gives back the source's content; the header carries the cheaper
 * `plaintextImageHash` of the snapshot itself). SQLite
 * renders each row as one line of `quote()`d values (text escaped, blobs in hex, so no two rows
 * render alike), and the lines are hashed by node's (OpenSSL's) SHA-256 in batches: no JavaScript
 * value per column, one hash update per 512 rows.
 */
export function contentHash(db: Database): { hash: string; rowCounts: Record<string, number> } {
  const hash = createHash('sha256');
  const rowCounts: Record<string, number> = {};
  for (const table of contentTables(db)) {
    const columns = (db.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').pluck().all(table.name) as string[]).map((c) => `quote(${quote(c)})`);
    if (!table.withoutRowid) columns.unshift('rowid');
    const order = table.withoutRowid ? table.pk.map(quote).join(', ') : 'rowid';
    const stmt = db.prepare(`SELECT ${columns.join(" || ',' || ")} FROM ${quote(table.name)} ORDER BY ${order}`).pluck();
    hash.update(`\u0000table ${table.name}\n`);
    let count = 0;
    let batch: string[] = [];
    for (const line of stmt.iterate() as Iterable<string>) {
      batch.push(line);
      count += 1;
      if (batch.length === 512) {
        hash.update(`${batch.join('\n')}\n`);
        batch = [];
      }
    }
    if (batch.length) hash.update(`${batch.join('\n')}\n`);
    rowCounts[table.name] = count;
  }
  return { hash: hash.digest('hex'), rowCounts };
}
