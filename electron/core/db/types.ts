import type BetterSqlite3 from 'better-sqlite3-multiple-ciphers';

/** The one database handle every repository function takes first (Signal style: `(db, ...args)`). */
export type Database = BetterSqlite3.Database;

/** One schema step: `up` runs inside the runner's transaction and must not commit by itself. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database): void;
}
