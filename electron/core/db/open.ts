import Sqlite from 'better-sqlite3-multiple-ciphers';
import { CodedError } from '../../../shared/errors';
import { migrate, schemaVersion, SCHEMA_VERSION, type MigrationResult } from './migrate';
import { preparePrivateDatabaseFiles } from './privateFiles';
import { applyCipherKey } from './cipher';
import type { Database } from './types';

export { applyCipherKey, DATABASE_KEY_BYTES } from './cipher';

export interface OpenDatabaseOptions {
  /** The database file. Its `-wal` and `-shm` companions live beside it. */
  path: string;
  /** 32 random bytes from the keychain, used as a raw SQLCipher key (no KDF). */
  key: Uint8Array;
  /** Stop at this schema version (tests of a single migration). Default: the newest. */
  targetVersion?: number;
  /** Skip migrations entirely (tests that build an older version by hand). */
  migrate?: boolean;
  readonly?: boolean;
}

export interface OpenedDatabase {
  db: Database;
  migration: MigrationResult | null;
}

/**
 * Opens (or creates) the encrypted store, checks the key before anything is written, sets the
 * connection pragmas and runs pending migrations. A wrong key gives `DATABASE_LOCKED` and leaves
 * the file untouched; a database from a newer build gives `DATABASE_TOO_NEW`.
 */
export function openDatabase(options: OpenDatabaseOptions): OpenedDatabase {
  if (!options.readonly) preparePrivateDatabaseFiles(options.path);
  const db = new Sqlite(options.path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  try {
    applyCipherKey(db, options.key);
    try {
      // The first read decrypts page 1; with a wrong key SQLCipher reports "not a database".
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } catch (err) {
      throw new CodedError(
        'DATABASE_LOCKED',
        'The database could not be unlocked with the key from the keychain (wrong key, or the file is damaged or not a Clinic Inbox database). Nothing was changed.' +
          (err instanceof Error && 'code' in err ? ` (${String((err as { code: unknown }).code)})` : ''),
      );
    }
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      // Acks to the relay follow a commit: the commit must survive a power cut.
      db.pragma('synchronous = FULL');
    }
    db.pragma('secure_delete = ON');
    db.pragma('temp_store = MEMORY');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    let migration: MigrationResult | null = null;
    if (options.migrate !== false && !options.readonly) {
      migration = migrate(db, options.targetVersion === undefined ? {} : { target: options.targetVersion });
    } else if (options.readonly && schemaVersion(db) > SCHEMA_VERSION) {
      // Read-only tools (backup, export) must not misread a newer schema either.
      migrate(db, { target: 0 });
    }
    return { db, migration };
  } catch (err) {
    db.close();
    throw err;
  }
}
