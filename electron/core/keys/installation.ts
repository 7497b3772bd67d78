import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE32_LOWER, encodeBase32 } from './base32';

export const INSTALLATION_ID_FILE = 'installation-id';
const ID_PATTERN = /^[a-z0-9]{26}$/;

/**
 * A random, non-secret id for this installation, kept in the data folder. It namespaces the
 * keychain accounts so two installations (or test runs) on one machine never share a key.
 */
export function loadOrCreateInstallationId(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, INSTALLATION_ID_FILE);
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (ID_PATTERN.test(id)) return id;
    throw new Error(`${file} does not hold a valid installation id; remove it only if this data folder is new`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = encodeBase32(randomBytes(16), BASE32_LOWER).slice(0, 26);
  try {
    // `wx`: if another process raced us, its id wins and we read it back.
    writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o600 });
    return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
}
