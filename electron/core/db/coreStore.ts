import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { applyStagedRestore } from '../backup/restore';
import { loadOrCreateCoreKeys, type CoreKeys } from '../keys/coreKeys';
import { loadOrCreateInstallationId } from '../keys/installation';
import type { SecretStore } from '../keys/secretStore';
import { openDatabase } from './open';
import { ensurePrivateFolder } from './privateFiles';
import { setSetting } from './repo/settings';
import type { Database } from './types';

export const DATABASE_FILE = 'clinic-inbox.db';

export interface CoreStore {
  db: Database;
  keys: CoreKeys;
  dataDir: string;
  databasePath: string;
  /** Set when this start migrated the schema (a backup follows). */
  migrated: boolean;
  close(): void;
}

export interface OpenCoreStoreDeps {
  dataDir: string;
  secrets: SecretStore;
  logger: Logger;
  clock?: () => number;
}

/**
 * The core's start-up path for its data: installation id → keys from the keychain → open and
 * migrate the encrypted database. Fails with `KEYCHAIN_UNAVAILABLE`, `RECOVERY_REQUIRED`,
 * `DATABASE_LOCKED` or `DATABASE_TOO_NEW` and writes nothing secret anywhere on the way.
 */
export async function openCoreStore(deps: OpenCoreStoreDeps): Promise<CoreStore> {
  const now = deps.clock ?? Date.now;
  const installationId = loadOrCreateInstallationId(deps.dataDir);
  ensurePrivateFolder(deps.dataDir, deps.logger);
  const databasePath = join(deps.dataDir, DATABASE_FILE);
  // A restore staged by `backup.restore` replaces the database before it opens (the old one kept aside).
  applyStagedRestore(deps.dataDir);
  const hadDatabase = existsSync(databasePath);
  const keys = await loadOrCreateCoreKeys(deps.secrets, installationId, { databaseExists: hadDatabase, dataDir: deps.dataDir });
  const { db, migration } = openDatabase({ path: databasePath, key: keys.databaseKey });
  setSetting(db, 'keychain_backend', keys.backend, now());
  deps.logger.info(
    { installationId, keychainBackend: keys.backend, schemaFrom: migration?.from, schemaTo: migration?.to, created: keys.created },
    'core store opened',
  );
  return { db, keys, dataDir: deps.dataDir, databasePath, migrated: (migration?.applied.length ?? 0) > 0 && !keys.created, close: () => db.close() };
}
