import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import { CodedError } from '../../../shared/errors';
import { DATABASE_FILE } from '../db/coreStore';
import { SCHEMA_VERSION } from '../db/migrate';
import { applyCipherKey, openDatabase } from '../db/open';
import type { Database } from '../db/types';
import { keychainAccounts } from '../keys/accounts';
import { INSTALLATION_ID_FILE } from '../keys/installation';
import { RECOVERY_FILE, unwrapWithRecoveryKey, type WrappedKeys } from '../keys/recovery';
import type { SecretStore } from '../keys/secretStore';
import { readLedger, reapplyErasures, type LedgerEntry } from '../privacy/erasure';
import { BACKUP_EXTENSION, readTrailer, unwrapBackupKey, type OuterHeader, type ReadTrailer, type SealedHeader } from './format';
import { inspectSnapshot, runWorker } from './runWorker';

/** A restore prepared for the core's next start (same computer): renamed over the database before it opens. */
export const stagedRestorePath = (dataDir: string): string => join(dataDir, `${DATABASE_FILE}.restore`);
/** Where the database a restore replaced is kept. */
export const beforeRestorePath = (dataDir: string): string => join(dataDir, `${DATABASE_FILE}.before-restore`);
/** Where a restored database that did not open is kept, until the one put back has opened. */
export const failedRestorePath = (dataDir: string): string => join(dataDir, `${DATABASE_FILE}.restore-failed`);

const DB_SUFFIXES = ['', '-wal', '-shm'];

/**
 * What the admin reads when a restore's database did not open and the database from before it did
 * not open either once put back (the core stays stopped). Nothing was deleted; the next start
 * opens the put-back database if it opens then.
 */
export const restoreRollbackFailed = (when: 'now' | 'at start'): CodedError =>
  new CodedError(
    'RESTORE_ROLLBACK_FAILED',
    (when === 'now'
      ? 'The restored database did not open, and the database you had before, put back in its place, did not open either. Clinic Inbox has stopped. '
      : 'Clinic Inbox cannot open its database since a restore that failed. ') +
      `Nothing was deleted: in the data folder, ${DATABASE_FILE} is the database from before the restore and ${DATABASE_FILE}.restore-failed the restored one. ` +
      'Quit and start Clinic Inbox again: if the database from before opens then, it runs unchanged. If it does not, leave the data folder as it is and ask your IT admin to restore a backup on this computer with the recovery key (IT admin guide, "When a restore fails twice").',
  );

export interface OpenedBackup {
  trailer: ReadTrailer;
  outer: OuterHeader;
  sealed: SealedHeader;
  backupKey: Buffer;
}

const otherInstallation = () => new CodedError('RECOVERY_KEY_WRONG', 'This backup belongs to another installation of Clinic Inbox; nothing was changed.');

/** The header authenticated with the database key (this installation's backups). */
export function openBackupWithDatabaseKey(path: string, databaseKey: Buffer, installationId: string): OpenedBackup {
  const trailer = readTrailer(path);
  const { outer } = trailer;
  if (outer.installationId !== installationId) throw otherInstallation();
  const backupKey = unwrapBackupKey(outer.backupKey, databaseKey, outer.installationId);
  if (!backupKey) throw new CodedError('VALIDATION_FAILED', 'The key in this backup does not open with this installation\u2019s database key: the file was altered. Nothing was changed.');
  return { trailer, outer, sealed: trailer.unseal(backupKey), backupKey };
}

function refuseNewerSchema(outer: OuterHeader): void {
  if (outer.schemaVersion > SCHEMA_VERSION) {
    throw new CodedError('DATABASE_TOO_NEW', `This backup has schema version ${outer.schemaVersion}; this version of Clinic Inbox knows up to ${SCHEMA_VERSION}. Install the newer version first; nothing was changed.`);
  }
}

/**
 * The keys the recovery key unwraps: from the recovery file the backup carries, or else from the
 * one a newer backup of the same installation in the same folder carries (the IT admin replaced
 * the recovery key after this backup was made, or no key existed yet then; the database key never
 * changes, so the newer file opens the older backup too — `openBackupWithDatabaseKey` proves it).
 */
function keysFromBackup(path: string, outer: OuterHeader, recoveryKey: string): WrappedKeys {
  const candidates: Record<string, unknown>[] = outer.recovery ? [outer.recovery] : [];
  for (const sibling of siblings(path, outer.installationId)) if (sibling.outer.recovery) candidates.push(sibling.outer.recovery);
  if (candidates.length === 0) {
    throw new CodedError('RECOVERY_KEY_WRONG', 'This backup was made before a recovery key existed, so it can only be restored on the computer that made it. Nothing was changed.');
  }
  let refusal: unknown = null;
  for (const recovery of candidates) {
    const scratch = mkdtempSync(join(tmpdir(), 'clinic-restore-'));
    try {
      writeFileSync(join(scratch, RECOVERY_FILE), JSON.stringify(recovery), { mode: 0o600 });
      const { installationId, keys } = unwrapWithRecoveryKey(scratch, recoveryKey);
      if (installationId !== outer.installationId) throw otherInstallation();
      return keys;
    } catch (err) {
      refusal ??= err;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  throw refusal;
}

/** The other backups of the installation in the same folder, newest first (damaged ones skipped). */
function siblings(path: string, installationId: string): { file: string; outer: OuterHeader }[] {
  const folder = dirname(path);
  const found: { file: string; outer: OuterHeader }[] = [];
  for (const name of readdirSync(folder)) {
    if (!name.endsWith(BACKUP_EXTENSION) || name === basename(path)) continue;
    try {
      const { outer } = readTrailer(join(folder, name));
      if (outer.installationId === installationId) found.push({ file: join(folder, name), outer });
    } catch {
      // A damaged neighbour has nothing to offer.
    }
  }
  return found.sort((a, b) => b.outer.createdAt - a.outer.createdAt);
}

/** The ledger of a database (a backup's snapshot, the live database) without loading anything else. */
function ledgerOf(path: string, key: Buffer): LedgerEntry[] {
  const db = new Sqlite(path, { readonly: true, fileMustExist: true }) as unknown as Database;
  try {
    applyCipherKey(db, key);
    if (db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'erasure_ledger'`).get() === undefined) return [];
    return readLedger(db);
  } catch {
    return [];
  } finally {
    db.close();
  }
}

/** The newest other backup of the same installation in the folder, for its erasure ledger. */
function newestSibling(path: string, installationId: string, databaseKey: Buffer): LedgerEntry[] {
  for (const sibling of siblings(path, installationId)) {
    const key = unwrapBackupKey(sibling.outer.backupKey, databaseKey, installationId);
    if (key) return ledgerOf(sibling.file, key);
  }
  return [];
}

/**
 * Writes the backup's database to `outPath` keyed with the database key, checked (integrity, row
 * counts and content hash against the authenticated header), migrated to this build's schema, and
 * with every erasure in the given ledgers applied again. Nothing but `outPath` is written; it is
 * removed again on any failure.
 */
async function prepareDatabase(input: { backupPath: string; opened: OpenedBackup; databaseKey: Buffer; outPath: string; ledgers: LedgerEntry[][] }): Promise<number> {
  const { opened, outPath } = input;
  rmSync(outPath, { force: true });
  try {
    // The backup as stored: every page authenticates (integrity_check), and the plaintext snapshot's
    // hash and row counts are the header's. Then it is rekeyed to the database key, and the copy's
    // row counts checked again (the rekey read and rewrote every page under SQLCipher's HMAC).
    const seen = await inspectSnapshot({ path: input.backupPath, key: opened.backupKey.toString('hex'), bytes: opened.outer.snapshotBytes });
    const sameCounts = (c: Record<string, number>) => JSON.stringify(c) === JSON.stringify(opened.sealed.rowCounts);
    if (seen.integrity !== 'ok' || seen.contentHash !== opened.sealed.contentHash || !sameCounts(seen.rowCounts) || seen.schemaVersion !== opened.outer.schemaVersion) {
      throw new CodedError('VALIDATION_FAILED', 'The backup opened but its content does not match its header (damaged or altered); nothing was changed.');
    }
    await runWorker({ kind: 'extract', backupPath: input.backupPath, snapshotBytes: opened.outer.snapshotBytes, backupKey: opened.backupKey.toString('hex'), outPath, databaseKey: input.databaseKey.toString('hex') });
    const copy = await runWorker({ kind: 'inspect', path: outPath, key: input.databaseKey.toString('hex'), hash: false, integrity: false });
    if (!sameCounts(copy.rowCounts)) throw new CodedError('VALIDATION_FAILED', 'The restored copy does not hold what the backup does; nothing was changed.');
    const { db } = openDatabase({ path: outPath, key: input.databaseKey });
    try {
      const reapplied = reapplyErasures(db, [seen.ledger, ...input.ledgers], input.databaseKey);
      db.pragma('journal_mode = DELETE');
      return reapplied;
    } finally {
      db.close();
    }
  } catch (err) {
    rmSync(outPath, { force: true });
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${outPath}${suffix}`, { force: true });
    if (err instanceof CodedError) throw err;
    throw new CodedError('VALIDATION_FAILED', 'The backup could not be opened (damaged or altered); nothing was changed.');
  }
}

/** Moves the current database (with its WAL) aside and the prepared one into its place. */
function swapIn(dataDir: string, prepared: string): void {
  const live = join(dataDir, DATABASE_FILE);
  const aside = beforeRestorePath(dataDir);
  if (existsSync(live)) {
    for (const suffix of DB_SUFFIXES) {
      rmSync(`${aside}${suffix}`, { force: true });
      if (existsSync(`${live}${suffix}`)) renameSync(`${live}${suffix}`, `${aside}${suffix}`);
    }
  }
  renameSync(prepared, live);
}

/**
 * Same computer: prepares the restore of one of this installation's backups for the core's next
 * start. The erasures in the live database's ledger and in the newest backup in the folder are
 * applied again.
 */
export async function stageRestore(input: { dataDir: string; file: string; databaseKey: Buffer; installationId: string; liveLedger: LedgerEntry[] }): Promise<{ createdAt: number; erasuresReapplied: number }> {
  const opened = openBackupWithDatabaseKey(input.file, input.databaseKey, input.installationId);
  refuseNewerSchema(opened.outer);
  const reapplied = await prepareDatabase({
    backupPath: input.file,
    opened,
    databaseKey: input.databaseKey,
    outPath: stagedRestorePath(input.dataDir),
    ledgers: [input.liveLedger, newestSibling(input.file, input.installationId, input.databaseKey)],
  });
  return { createdAt: opened.outer.createdAt, erasuresReapplied: reapplied };
}

/** At start-up, before the database opens: a staged restore replaces it (the old one kept aside). */
export function applyStagedRestore(dataDir: string): boolean {
  const staged = stagedRestorePath(dataDir);
  if (!existsSync(staged)) return false;
  swapIn(dataDir, staged);
  return true;
}

export interface PreparedFileRestore {
  result: { installationId: string; createdAt: number; erasuresReapplied: number };
  /** Puts the keys into the keychain and the database, installation id and recovery file into the folder. */
  commit(): Promise<void>;
  /** Removes the prepared database (a refusal or a change of mind): nothing else was written. */
  discard(): void;
}

/**
 * New hardware (or a keychain that lost the key), first half: every check (the recovery key, the
 * installation, the file's integrity, its schema) and the prepared database, before anything is
 * written outside a scratch file in the data folder. `replaceNeverUsed`: the folder holds a
 * brand-new installation nobody used (the caller decided, see `BackupService.neverUsed`), which the
 * restored one replaces.
 */
export async function prepareRestoreFromFile(input: { dataDir: string; path: string; recoveryKey: string; secrets: SecretStore; replaceNeverUsed?: boolean }): Promise<PreparedFileRestore> {
  const { outer } = readTrailer(input.path);
  refuseNewerSchema(outer);
  const keys = keysFromBackup(input.path, outer, input.recoveryKey);
  const databaseKey = Buffer.from(keys.databaseKey, 'hex');
  const idFile = join(input.dataDir, INSTALLATION_ID_FILE);
  const live = join(input.dataDir, DATABASE_FILE);
  const existingId = existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : null;
  const sameInstallation = existingId === outer.installationId;
  if (existingId && !sameInstallation && existsSync(live) && !input.replaceNeverUsed) {
    throw new CodedError('CONFLICT', 'This data folder holds another installation\u2019s database; restore into an empty folder. Nothing was changed.');
  }
  const opened = openBackupWithDatabaseKey(input.path, databaseKey, outer.installationId);
  const liveLedger = existsSync(live) && sameInstallation ? ledgerOf(live, databaseKey) : [];
  mkdirSync(input.dataDir, { recursive: true, mode: 0o700 });
  const prepared = stagedRestorePath(input.dataDir);
  const erasuresReapplied = await prepareDatabase({ backupPath: input.path, opened, databaseKey, outPath: prepared, ledgers: [liveLedger, newestSibling(input.path, outer.installationId, databaseKey)] });
  return {
    result: { installationId: outer.installationId, createdAt: outer.createdAt, erasuresReapplied },
    discard: () => rmSync(prepared, { force: true }),
    async commit() {
      try {
        const accounts = keychainAccounts(outer.installationId);
        // Device keys first: a database key without them would make the core generate new ones.
        for (const [account, value] of [
          [accounts.deviceSigningKey, keys.deviceSigningKey],
          [accounts.deviceEncryptionKey, keys.deviceEncryptionKey],
          [accounts.databaseKey, keys.databaseKey],
        ] as const) {
          await input.secrets.set(account, value);
          if ((await input.secrets.get(account)) !== value) throw new CodedError('KEYCHAIN_UNAVAILABLE', 'The keychain did not keep the restored keys; try again once it is unlocked.');
        }
      } catch (err) {
        rmSync(prepared, { force: true });
        throw err;
      }
      if (!sameInstallation) writeFileSync(idFile, `${outer.installationId}\n`, { mode: 0o600 });
      writeFileSync(join(input.dataDir, RECOVERY_FILE), `${JSON.stringify(outer.recovery, null, 2)}\n`, { mode: 0o600 });
      swapIn(input.dataDir, prepared);
    },
  };
}

/** New hardware: checks, prepares and puts the restored installation in place (nothing is running on the folder). */
export async function restoreFromFile(input: { dataDir: string; path: string; recoveryKey: string; secrets: SecretStore; replaceNeverUsed?: boolean }): Promise<{ installationId: string; createdAt: number; erasuresReapplied: number }> {
  const prepared = await prepareRestoreFromFile(input);
  await prepared.commit();
  return prepared.result;
}

/** After the restored database opened: the one it replaced is no longer needed. */
export function discardBeforeRestore(dataDir: string): void {
  for (const suffix of DB_SUFFIXES) rmSync(`${beforeRestorePath(dataDir)}${suffix}`, { force: true });
}

/**
 * The restored database did not open: the one it replaced goes back, and the restored one is kept
 * beside it (`failedRestorePath`) until the one put back has opened, so that if that one fails too
 * both are still there.
 */
export function undoRestore(dataDir: string): void {
  const live = join(dataDir, DATABASE_FILE);
  const aside = beforeRestorePath(dataDir);
  if (!existsSync(aside)) return;
  const failed = failedRestorePath(dataDir);
  for (const suffix of DB_SUFFIXES) {
    rmSync(`${failed}${suffix}`, { force: true });
    if (existsSync(`${live}${suffix}`)) renameSync(`${live}${suffix}`, `${failed}${suffix}`);
    if (existsSync(`${aside}${suffix}`)) renameSync(`${aside}${suffix}`, `${live}${suffix}`);
  }
}

/** The database put back after a failed restore has opened: the restored one that did not is no longer needed (its backup file still is). */
export function discardFailedRestore(dataDir: string): void {
  for (const suffix of DB_SUFFIXES) rmSync(`${failedRestorePath(dataDir)}${suffix}`, { force: true });
}

/** A restore failed twice earlier and its files are still in the folder (see `restoreRollbackFailed`). */
export const hasFailedRestore = (dataDir: string): boolean => existsSync(failedRestorePath(dataDir));
