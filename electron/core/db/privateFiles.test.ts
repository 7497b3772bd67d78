import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensurePrivateFolder, preparePrivateDatabaseFiles } from './privateFiles';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('private data folder', () => {
  it('corrects a folder others can read, with a log line, and leaves a private one alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-mode-'));
    try {
      const warnings: unknown[] = [];
      chmodSync(dir, 0o755);
      expect(ensurePrivateFolder(dir, { warn: (...a: unknown[]) => void warnings.push(a) } as never)).toBe(true);
      expect(mode(dir)).toBe(0o700);
      expect(warnings).toHaveLength(1);
      expect(ensurePrivateFolder(dir, { warn: (...a: unknown[]) => void warnings.push(a) } as never)).toBe(false);
      expect(warnings).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates the database file 0600 whatever the umask, and tightens loose companions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-mode-'));
    const old = process.umask(0o022);
    try {
      const db = join(dir, 'x.db');
      preparePrivateDatabaseFiles(db);
      expect(mode(db)).toBe(0o600);
      writeFileSync(`${db}-wal`, '', { mode: 0o644 });
      preparePrivateDatabaseFiles(db);
      expect(mode(`${db}-wal`)).toBe(0o600);
    } finally {
      process.umask(old);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
