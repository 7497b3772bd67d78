import { join } from 'node:path';
import { CodedError } from '../../../shared/errors';
import { DATABASE_FILE } from '../db/coreStore';
import type { Database } from '../db/types';
import { readLedger } from '../privacy/erasure';
import { eraseInWorker } from '../privacy/runErasure';
import type { Handlers } from '../rpc/dispatch';
import { stageRestore } from './restore';
import { requestBackup, type BackupService } from './service';

type BackupMethods =
  | 'backup.status'
  | 'backup.getSettings'
  | 'backup.updateSettings'
  | 'backup.runNow'
  | 'backup.list'
  | 'backup.verify'
  | 'backup.restore'
  | 'backup.restoreFromFile'
  | 'privacy.eraseContact';

export interface BackupHandlerDeps {
  db: Database;
  now: () => number;
  backups: BackupService;
  dataDir: string;
  installationId: string;
  databaseKey: Buffer;
}

/** The backup slice of the RPC: admins only; the restore from a file is the locked core's. */
export function createBackupHandlers(deps: BackupHandlerDeps): Pick<Handlers, BackupMethods> {
  const { backups } = deps;
  return {
    'backup.status': () => backups.status(),
    'backup.getSettings': () => backups.settings(),
    'backup.updateSettings': (patch) => backups.updateSettings(patch),
    'backup.runNow': () => backups.runNow('manual'),
    'backup.list': () => backups.list(),
    'backup.verify': ({ file }) => backups.verify(file),
    'backup.restore': async ({ file }) => {
      const result = await stageRestore({ dataDir: deps.dataDir, file, databaseKey: deps.databaseKey, installationId: deps.installationId, liveLedger: readLedger(deps.db) });
      return { installationId: deps.installationId, ...result, restartRequired: true as const };
    },
    'backup.restoreFromFile': () => {
      throw new CodedError('CONFLICT', 'This computer already has its data open; restore from a file on the first-run screen of a new computer, or pick a backup from the list.');
    },
    // In a worker thread on a connection of its own (the inbox keeps answering meanwhile); it
    // resolves once the rows are gone, the search index purged and the WAL checkpointed, so the
    // backup that follows an erasure never copies the patient's words. The audit entry is written
    // when it settles (as for every asynchronous handler).
    'privacy.eraseContact': async ({ contactId, reason }, ctx) => {
      ctx.because(reason);
      ctx.concerns(contactId);
      await eraseInWorker({ path: join(deps.dataDir, DATABASE_FILE), key: deps.databaseKey.toString('hex'), contactId, erasedBy: ctx.me.userId, now: deps.now() });
      requestBackup(backups, 'erasure');
      return { erased: true as const };
    },
  };
}
