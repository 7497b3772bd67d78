import type BetterSqlite3 from 'better-sqlite3-multiple-ciphers';
import type { Database } from './types';

type Statement = BetterSqlite3.Statement<unknown[], unknown>;
const caches = new WeakMap<Database, Map<string, Statement>>();

/**
 * Prepares each SQL text once per connection. Repository functions stay plain `(db, ...args)`
 * functions without a class to hold their statements, and still pay for parsing only once.
 */
export function stmt(db: Database, sql: string): Statement {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}
