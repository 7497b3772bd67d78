import { CodedError } from '../../../shared/errors';
import type { Database } from '../db/types';
import { checkpointAfterErasure, eraseContact, readLedger } from '../privacy/erasure';
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
    'privacy.eraseContact': ({ contactId, reason }, ctx) => {
      ctx.because(reason);
      ctx.concerns(contactId);
      eraseContact(deps.db, { contactId, erasedBy: ctx.me.userId, now: deps.now(), databaseKey: deps.databaseKey });
      ctx.afterCommit(() => {
        checkpointAfterErasure(deps.db);
        requestBackup(backups, 'erasure');
      });
      return { erased: true as const };
    },
  };
}
