import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Logger } from 'pino';

/**
 * The data folder and the database files are readable by this OS user alone: 0700 / 0600 on
 * POSIX, an ACL for the user alone (inheritance removed) on Windows. Checked at every start, so a
 * folder restored from a copy or loosened by hand is corrected, with a log line saying so.
 */
export function ensurePrivateFolder(dir: string, logger: Pick<Logger, 'warn'>, platform: NodeJS.Platform = process.platform): boolean {
  if (platform === 'win32') {
    try {
      // (OI)(CI)F: full control for the user, inherited by every file; /inheritance:r drops the rest.
      execFileSync('icacls', [dir, '/inheritance:r', '/grant:r', `${userInfo().username}:(OI)(CI)F`], { stdio: 'ignore', windowsHide: true });
    } catch {
      logger.warn('could not restrict the data folder to this user (icacls failed)');
    }
    return false;
  }
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return false;
  chmodSync(dir, 0o700);
  logger.warn({ from: mode.toString(8), to: '700' }, 'data folder was readable by others; its mode was corrected');
  return true;
}

/** Creates the database file 0600 before SQLite opens it (its -wal and -shm take the same mode), and tightens existing ones. */
export function preparePrivateDatabaseFiles(path: string): void {
  if (process.platform === 'win32') return;
  if (!existsSync(path)) {
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
