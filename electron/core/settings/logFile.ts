import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export const LOG_DIR = 'logs';
export const LOG_FILE = 'core.log';

export interface RotatingLogOptions {
  dir: string;
  /** Each file's cap; the current file rolls to `core.log.1` when a line would cross it. */
  maxBytes?: number;
  /** How many rolled files are kept (`core.log.1` … `core.log.N`). */
  keep?: number;
}

/**
 * Size-capped rotating log files in the data folder (0600, in a 0700 folder): at most
 * `maxBytes × (keep + 1)` on disk. Written synchronously, a line at a time: the core logs little.
 */
export function createRotatingLog(options: RotatingLogOptions): Writable & { path: string } {
  const maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
  const keep = options.keep ?? 4;
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const path = join(options.dir, LOG_FILE);
  let fd = openSync(path, 'a', 0o600);
  let size = statSync(path).size;
  const roll = (): void => {
    closeSync(fd);
    rmSync(`${path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    renameSync(path, `${path}.1`);
    fd = openSync(path, 'a', 0o600);
    size = 0;
  };
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (size > 0 && size + bytes.length > maxBytes) roll();
      writeSync(fd, bytes);
      size += bytes.length;
      done();
    },
    final(done) {
      closeSync(fd);
      done();
    },
  });
  return Object.assign(stream, { path });
}

/** The core's logger: stdout plus the rotating files in `<dataDir>/logs`. */
export function createCoreLogger(options: { dataDir: string; level?: string; stdout?: boolean; maxBytes?: number }): Logger {
  const file = createRotatingLog({ dir: join(options.dataDir, LOG_DIR), maxBytes: options.maxBytes });
  const streams: pino.StreamEntry[] = [{ stream: file, level: 'trace' }];
  if (options.stdout !== false) streams.push({ stream: process.stdout, level: 'trace' });
  return pino({ level: options.level ?? 'info', base: { part: 'core' } }, pino.multistream(streams));
}

/** The last `max` lines of the log, oldest first, across the rolled files. */
export function recentLogLines(dataDir: string, max = 2000): string[] {
  const base = join(dataDir, LOG_DIR, LOG_FILE);
  const lines: string[] = [];
  for (let i = 0; i <= 10 && lines.length < max; i++) {
    const file = i === 0 ? base : `${base}.${i}`;
    if (!existsSync(file)) break;
    const text = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
    lines.unshift(...text.slice(-(max - lines.length)));
  }
  return lines;
}
