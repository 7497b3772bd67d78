import { CodedError } from '../../../shared/errors';
import { MIGRATIONS } from './migrations';
import type { Database, Migration } from './types';

/** The schema version this build writes. Stored in `PRAGMA user_version`. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

export interface MigrationResult {
  from: number;
  to: number;
  applied: number[];
}

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database to `target` (default: the newest version), one migration per transaction,
 * so a crash leaves it at a whole version. A database written by a newer build is refused rather
 * than guessed at: an older build could silently misread or damage columns it does not know.
 */
export function migrate(
  db: Database,
  options: { target?: number; migrations?: readonly Migration[] } = {},
): MigrationResult {
  const migrations = options.migrations ?? MIGRATIONS;
  const newest = migrations[migrations.length - 1]?.version ?? 0;
  const target = options.target ?? newest;
  const from = schemaVersion(db);
  if (from > newest) {
    throw new CodedError(
      'DATABASE_TOO_NEW',
      `The database has schema version ${from}, but this version of Clinic Inbox only knows up to ${newest}. ` +
        'Install the newer version of Clinic Inbox that last opened this database; nothing was changed.',
    );
  }
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= from || m.version > target) continue;
    db.transaction(() => {
      m.up(db);
      // user_version cannot be bound as a parameter; the value is our own integer.
      db.pragma(`user_version = ${Math.trunc(m.version)}`);
    }).immediate();
    applied.push(m.version);
  }
  return { from, to: schemaVersion(db), applied };
}
