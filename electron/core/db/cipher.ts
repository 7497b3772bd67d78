import Sqlite from 'better-sqlite3-multiple-ciphers';
import { CodedError } from '../../../shared/errors';
import type { Database } from './types';

export const DATABASE_KEY_BYTES = 32;

/**
 * Sets the SQLCipher 4 scheme and raw key. Must be the first thing done on a connection: any
 * read before the key would treat the file as plaintext.
 */
export function applyCipherKey(db: Database, key: Uint8Array): void {
  if (key.length !== DATABASE_KEY_BYTES) {
    throw new CodedError('DATABASE_LOCKED', `The database key must be ${DATABASE_KEY_BYTES} bytes.`);
  }
  db.pragma(`cipher = 'sqlcipher'`);
  db.pragma('legacy = 4');
  db.pragma(`key = "x'${Buffer.from(key).toString('hex')}'"`);
}

/**
 * A worker thread's own connection to the core's database, keyed and set as the core's own
 * (secure delete, temp store in memory, foreign keys, a 5 s busy timeout). `synchronous` is the
 * caller's decision: FULL where its commit is a state change the core answers on, NORMAL where a
 * lost commit is only work done again.
 */
export function openWorkerConnection(path: string, keyHex: string, synchronous: 'FULL' | 'NORMAL'): Database {
  const db = new Sqlite(path, { fileMustExist: true }) as unknown as Database;
  applyCipherKey(db, Buffer.from(keyHex, 'hex'));
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('secure_delete = ON');
  db.pragma('temp_store = MEMORY');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}
