import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Base64UrlSchema } from '../../../shared/encoding';
import { CodedError } from '../../../shared/errors';
import type { RecoveryStatus } from '../../../shared/rpc';
import { openDatabase } from '../db/open';
import type { CoreKeys } from './coreKeys';
import { keychainAccounts } from './accounts';
import { CROCKFORD, decodeBase32, encodeBase32 } from './base32';
import { INSTALLATION_ID_FILE } from './installation';
import type { SecretStore } from './secretStore';

/**
 * The IT admin's recovery key: printed once at setup, it brings the installation back on new
 * hardware when the old computer's keychain is gone: the database key, and the device keys too, so
 * the appliance is still the one the relay knows and what waited there for it is delivered. (Only
 * the WhatsApp token is not kept: it can change at any time, and Meta issues a new one in minutes.)
 *
 * The key is 16 random bytes plus a 4-byte checksum, written as 32 Crockford base32 characters in
 * groups of four (`7Q2M-…`). The checksum tells a typo ("mistyped") from a wrong key ("does not
 * open this data"). The keys are wrapped with AES-256-GCM under a key derived by HKDF from
 * those 128 random bits — a password KDF would add nothing to a key that is already random — and
 * the wrapped copy lives beside the database in `recovery-key.json`. That file alone is useless:
 * it is what the recovery key opens, and it travels with the data folder to the new computer.
 */
export const RECOVERY_FILE = 'recovery-key.json';

const SECRET_BYTES = 16;
const CHECK_BYTES = 4;
const HKDF_INFO = Buffer.from('clinic-inbox recovery key v1');

const RecoveryFileSchema = z.object({
  version: z.literal(1),
  installationId: z.string().regex(/^[a-z0-9]{26}$/),
  createdAt: z.number().int(),
  salt: Base64UrlSchema,
  iv: Base64UrlSchema,
  /** AES-256-GCM ciphertext of the `WrappedKeys` JSON followed by its 16-byte tag. */
  wrappedKeys: Base64UrlSchema,
  /**
   * When the IT admin said they stored the key; null while the key was shown but not confirmed.
   * Absent in files from before this field: those keys were confirmed by the wizard of their time.
   */
  confirmedAt: z.number().int().nullable().optional(),
});
type RecoveryFile = z.infer<typeof RecoveryFileSchema>;

/** What the recovery key unwraps: the keychain entries that never change once made. */
const WrappedKeysSchema = z.object({
  /** 64 hex characters, as in the keychain. */
  databaseKey: z.string().regex(/^[0-9a-f]{64}$/),
  /** PKCS#8 DER, base64url, as in the keychain. */
  deviceSigningKey: Base64UrlSchema,
  deviceEncryptionKey: Base64UrlSchema,
});
export type WrappedKeys = z.infer<typeof WrappedKeysSchema>;

function checksum(secret: Buffer): Buffer {
  return createHash('sha256').update('clinic-inbox recovery checksum').update(secret).digest().subarray(0, CHECK_BYTES);
}

/** The recovery key as a person reads it aloud or types it: eight groups of four. */
function formatRecoveryKey(secret: Buffer): string {
  const text = encodeBase32(Buffer.concat([secret, checksum(secret)]), CROCKFORD);
  return text.match(/.{4}/g)!.join('-');
}

/**
 * Reads a recovery key as typed: case, spaces and dashes do not matter, and the letters people
 * confuse with digits (O, I, L) are read as the digits, as Crockford's alphabet intends.
 */
export function parseRecoveryKey(typed: string): Buffer {
  const text = typed
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  const bytes = text.length === 32 ? decodeBase32(text, CROCKFORD) : null;
  const secret = bytes?.subarray(0, SECRET_BYTES);
  if (!bytes || !secret || !checksum(secret).equals(bytes.subarray(SECRET_BYTES))) {
    throw new CodedError(
      'RECOVERY_KEY_INVALID',
      'That is not a valid recovery key: it should be 32 letters and digits in eight groups of four. Check it for a typo and try again.',
    );
  }
  return Buffer.from(secret);
}

function wrappingKey(secret: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, HKDF_INFO, 32));
}

function aad(installationId: string, createdAt: number): Buffer {
  return Buffer.from(`clinic-inbox/recovery/v1/${installationId}/${createdAt}`);
}

function readRecoveryFile(dataDir: string): RecoveryFile | null {
  let raw: string;
  try {
    raw = readFileSync(join(dataDir, RECOVERY_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = null;
  }
  const parsed = RecoveryFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new CodedError('RECOVERY_KEY_WRONG', `${RECOVERY_FILE} in the data folder is damaged; the recovery key cannot be used with it.`);
  }
  return parsed.data;
}

/** Writes the file whole or not at all: a crash mid-write must never leave the clinic without a usable copy. */
function writeFileDurably(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(join(path, '..'), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export function recoveryStatus(dataDir: string): RecoveryStatus {
  try {
    const file = readRecoveryFile(dataDir);
    return { configured: file !== null, createdAt: file?.createdAt ?? null, confirmed: file !== null && file.confirmedAt !== null };
  } catch {
    return { configured: false, createdAt: null, confirmed: false };
  }
}

/**
 * Makes a new recovery key for this installation's keys and returns it for showing once.
 * It replaces any earlier one: from then on only the new key opens the data.
 */
export function createRecoveryKey(input: { dataDir: string; installationId: string; keys: WrappedKeys; now: number; confirmed?: boolean }): PreparedRecoveryKey {
  const keys = WrappedKeysSchema.parse(input.keys);
  const secret = randomBytes(SECRET_BYTES);
  const salt = randomBytes(32);
  const iv = randomBytes(12);
  const createdAt = input.now;
  const cipher = createCipheriv('aes-256-gcm', wrappingKey(secret, salt), iv);
  cipher.setAAD(aad(input.installationId, createdAt));
  const wrapped = Buffer.concat([cipher.update(JSON.stringify(keys), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const file: RecoveryFile = {
    version: 1,
    installationId: input.installationId,
    createdAt,
    salt: salt.toString('base64url'),
    iv: iv.toString('base64url'),
    wrappedKeys: wrapped.toString('base64url'),
    confirmedAt: input.confirmed ? createdAt : null,
  };
  return {
    recoveryKey: formatRecoveryKey(secret),
    createdAt,
    save: () => writeFileDurably(join(input.dataDir, RECOVERY_FILE), `${JSON.stringify(file, null, 2)}\n`),
  };
}

/** A new recovery key and its wrapped keys, not yet on disk: `save()` replaces the old one. */
export interface PreparedRecoveryKey {
  recoveryKey: string;
  createdAt: number;
  save(): void;
}

/** The keys the recovery key unwraps, with the installation they belong to. */
export function unwrapWithRecoveryKey(dataDir: string, typed: string): { installationId: string; keys: WrappedKeys } {
  const secret = parseRecoveryKey(typed);
  const file = readRecoveryFile(dataDir);
  if (!file) {
    throw new CodedError(
      'RECOVERY_KEY_WRONG',
      `There is no ${RECOVERY_FILE} in this data folder, so no recovery key can open it. Copy the whole data folder from the old computer or its backup.`,
    );
  }
  const wrapped = Buffer.from(file.wrappedKeys, 'base64url');
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', wrappingKey(secret, Buffer.from(file.salt, 'base64url')), Buffer.from(file.iv, 'base64url'));
    decipher.setAAD(aad(file.installationId, file.createdAt));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
    plain = Buffer.concat([decipher.update(wrapped.subarray(0, wrapped.length - 16)), decipher.final()]);
  } catch {
    throw new CodedError(
      'RECOVERY_KEY_WRONG',
      'This recovery key does not open this data folder. It may belong to another installation, or a newer recovery key replaced it.',
    );
  }
  let keys: WrappedKeys;
  try {
    keys = WrappedKeysSchema.parse(JSON.parse(plain.toString('utf8')));
  } catch {
    throw new CodedError('RECOVERY_KEY_WRONG', `${RECOVERY_FILE} opened but holds no usable keys; nothing was changed.`);
  } finally {
    plain.fill(0);
  }
  return { installationId: file.installationId, keys };
}

/**
 * New hardware, old data folder: puts the keys the recovery key unwraps back into this computer's
 * keychain, after proving the database key opens the database. Nothing is written unless it does.
 * With the device keys back, the appliance resumes its relay link as before; only the WhatsApp
 * token has to be entered again.
 */
export async function restoreFromRecoveryKey(input: { dataDir: string; databasePath: string; secrets: SecretStore; recoveryKey: string }): Promise<{
  installationId: string;
  /** False when the keychain already held a key that opens the database: nothing was changed. */
  restored: boolean;
}> {
  const { installationId, keys } = unwrapWithRecoveryKey(input.dataDir, input.recoveryKey);
  const idFile = join(input.dataDir, INSTALLATION_ID_FILE);
  if (existsSync(idFile) && readFileSync(idFile, 'utf8').trim() !== installationId) {
    throw new CodedError('RECOVERY_KEY_WRONG', `${RECOVERY_FILE} belongs to another installation than this data folder; nothing was changed.`);
  }
  const { databasePath } = input;
  if (!existsSync(databasePath)) {
    throw new CodedError('NOT_FOUND', `There is no database in ${input.dataDir}; copy the whole data folder from the old computer or its backup.`);
  }
  const opens = (hex: string): boolean => {
    try {
      openDatabase({ path: databasePath, key: Buffer.from(hex, 'hex'), readonly: true }).db.close();
      return true;
    } catch {
      return false;
    }
  };
  if (!opens(keys.databaseKey)) {
    throw new CodedError('DATABASE_LOCKED', 'The recovery key unwrapped a key, but it does not open the database in this folder (the database was replaced or damaged). Nothing was changed.');
  }
  const accounts = keychainAccounts(installationId);
  const current = await input.secrets.get(accounts.databaseKey);
  if (current !== null && /^[0-9a-f]{64}$/.test(current) && opens(current)) return { installationId, restored: false };
  // Device keys first: a database key without them would make the core generate new ones.
  for (const [account, value] of [
    [accounts.deviceSigningKey, keys.deviceSigningKey],
    [accounts.deviceEncryptionKey, keys.deviceEncryptionKey],
    [accounts.databaseKey, keys.databaseKey],
  ] as const) {
    await input.secrets.set(account, value);
    if ((await input.secrets.get(account)) !== value) {
      throw new CodedError('KEYCHAIN_UNAVAILABLE', 'The keychain did not keep the restored keys; try again once the keychain is unlocked.');
    }
  }
  return { installationId, restored: true };
}

export interface RecoveryService {
  status(): RecoveryStatus;
  /**
   * A new key, saved only by `save()` (the caller does that once the audit entry is committed, so
   * a failed call leaves the old key working). Refuses with `CONFLICT` when one exists and
   * `replace` is false: the printed one would stop working. A key shown but never confirmed is
   * replaced without asking (nobody said they kept it). `confirmed`: the caller shows the key
   * in a way that needs no confirmation (the console prints it).
   */
  create(replace: boolean, confirmed?: boolean): PreparedRecoveryKey;
  /** The IT admin stored the key made at `createdAt`; false when that is no longer the current key. */
  confirm(createdAt: number): boolean;
}

export function createRecoveryService(deps: { dataDir: string; keys: CoreKeys; now: () => number }): RecoveryService {
  const pkcs8 = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'der' }).toString('base64url');
  return {
    status: () => recoveryStatus(deps.dataDir),
    create(replace, confirmed = false) {
      const current = recoveryStatus(deps.dataDir);
      if (!replace && current.configured && current.confirmed) {
        throw new CodedError('CONFLICT', 'A recovery key already exists. Making a new one makes the old one useless; confirm that you want to replace it.');
      }
      return createRecoveryKey({
        dataDir: deps.dataDir,
        installationId: deps.keys.installationId,
        keys: {
          databaseKey: deps.keys.databaseKey.toString('hex'),
          deviceSigningKey: pkcs8(deps.keys.signing.privateKey),
          deviceEncryptionKey: pkcs8(deps.keys.encryption.privateKey),
        },
        now: deps.now(),
        confirmed,
      });
    },
    confirm(createdAt) {
      const file = readRecoveryFile(deps.dataDir);
      if (!file || file.createdAt !== createdAt) return false;
      if (file.confirmedAt == null) writeFileDurably(join(deps.dataDir, RECOVERY_FILE), `${JSON.stringify({ ...file, confirmedAt: deps.now() }, null, 2)}\n`);
      return true;
    },
  };
}
