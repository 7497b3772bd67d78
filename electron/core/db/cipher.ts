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
