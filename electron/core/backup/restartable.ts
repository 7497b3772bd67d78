import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { CodedError } from '../../../shared/errors';
import type { RpcResult } from '../../../shared/rpc';
import type { CoreHandle, CreateCoreOptions } from '../createCore';
import { keychainAccounts } from '../keys/accounts';
import { INSTALLATION_ID_FILE } from '../keys/installation';
import { createKeytarSecretStore } from '../keys/secretStore';
import { createDispatch, type AuditRecord, type Handler, type Handlers } from '../rpc/dispatch';
import type { Connection, Core, CoreEventListener } from '../types';
import { discardBeforeRestore, discardFailedRestore, hasFailedRestore, prepareRestoreFromFile, restoreRollbackFailed, undoRestore } from './restore';
import { requestBackup } from './service';

/** What the admin reads when the restored database did not open and the previous one went back. */
export const RESTORE_ROLLED_BACK =
  'The restored database did not open on this computer, so the database you had before the restore was put back and is running unchanged. Try an older backup, or run "Verify" on this one.';

export interface RestartableCore extends Core {
  /** The core now running (a restore replaces it). */
  current(): CoreHandle;
  appendAudit(record: AuditRecord): void;
}

interface Attached {
  origin: string;
  inner: Connection | null;
  listeners: Set<CoreEventListener>;
}

/**
 * The window's core, able to restart itself in place after a restore, so the window's connection
 * stays and reattaches to the restored database (signed out: its sessions are the backup's).
 *
 * - `backup.restore` (same computer): the running core stages and verifies the restore; then the
 *   core is closed, reopened (the staged database replaces the current one, which is kept aside
 *   as `clinic-inbox.db.before-restore`), and once the restored one has opened — keys, schema,
 *   migrations — the one kept aside is removed. If it does not open, the kept one goes back and
 *   the core reopens on it, and the call fails (`RESTORE_ROLLED_BACK`). If the one put back does not
 *   open either, nothing more is moved or deleted: the core stays stopped, every call answers
 *   `RESTORE_ROLLBACK_FAILED` (both files named), and the next start opens the put-back database
 *   if it opens then, or refuses with the same code (`startCore`).
 * - `backup.restoreFromFile` on a folder whose installation was never used (see
 *   `BackupService.neverUsed`: no accounts, no patients, no messages, no person's audit entry,
 *   not paired): the backup is checked and prepared while the fresh core runs, then it replaces
 *   the fresh installation (database, installation id, recovery file, keys in the keychain); the
 *   fresh installation's keys are removed from the keychain once the restored core opened. Any
 *   other installation answers CONFLICT (the real core's handler), and nothing changes.
 */
export function restartable(options: CreateCoreOptions, first: CoreHandle, open: (o: CreateCoreOptions) => Promise<CoreHandle>): RestartableCore {
  const logger = options.logger ?? pino({ level: 'info', base: { part: 'core' } });
  let core = first;
  // Set when a failed restore's put-back database did not open either: the core is closed for good.
  let stopped: CodedError | null = null;
  let gate: Promise<void> | null = null;
  if (hasFailedRestore(options.dataDir)) {
    // A restore failed twice before this start, and the database put back then opens now: the
    // restored copy that did not open goes, as after a single failure (its backup file stays).
    discardFailedRestore(options.dataDir);
    logger.warn({ event: 'restore_failed_copy_removed' }, 'the database put back after a failed restore opened; the restored copy that did not open was removed');
  }
  const attached = new Set<Attached>();

  const innerOf = (a: Attached): Connection => {
    if (!a.inner) {
      const inner = core.connect(a.origin);
      inner.on((event, payload) => a.listeners.forEach((l) => l(event, payload)));
      a.inner = inner;
    }
    return a.inner;
  };

  /** Every call waits while the core is being replaced. */
  async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (gate) await gate.catch(() => undefined);
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    try {
      return await fn();
    } finally {
      gate = null;
      release();
    }
  }

  /** Closes the core, runs `commit`, opens the core again; on failure `undo` and open what was there. */
  async function restart(caller: Attached | null, commit: () => Promise<void>, undo: () => void): Promise<void> {
    for (const a of attached) {
      a.inner?.close();
      a.inner = null;
    }
    await core.close();
    try {
      await commit();
      core = await open(options);
      discardBeforeRestore(options.dataDir);
      logger.info({ event: 'restore_applied' }, 'backup restored; core reopened on it');
      requestBackup(core.backups, 'restore');
    } catch (err) {
      logger.error({ event: 'restore_failed', code: err instanceof CodedError ? err.code : 'INTERNAL' }, 'the restored database did not open; putting the previous one back');
      undo();
      try {
        core = await open(options);
      } catch (again) {
        // Both databases stay in the folder as they are; guessing further could lose one of them.
        logger.error({ event: 'restore_rollback_failed', code: again instanceof CodedError ? again.code : 'INTERNAL' }, 'the database put back did not open either; the core stays stopped');
        stopped = restoreRollbackFailed('now');
        throw stopped;
      }
      discardFailedRestore(options.dataDir);
      throw err;
    } finally {
      for (const a of attached) {
        // A window that connected while the core was closed holds a dead connection: reattach all
        // (unless there is no core to reattach to: then every call answers why).
        a.inner?.close();
        a.inner = null;
        if (!stopped) innerOf(a);
        // Other windows go back to sign-in now; the restoring window shows the result first.
        if (a !== caller) a.listeners.forEach((l) => l('session.ended', { reason: 'signed_out' }));
      }
    }
  }

  const restoreHere = (a: Attached, params: unknown): Promise<RpcResult<unknown>> =>
    exclusive(async () => {
      const result = await innerOf(a).dispatch('backup.restore', params);
      if (!result.ok) return result;
      try {
        await restart(a, () => Promise.resolve(), () => undoRestore(options.dataDir));
      } catch {
        if (stopped) return { ok: false, error: stopped.toJSON() };
        // The core runs again on the database it had (restart put it back); the window is told why.
        return { ok: false, error: new CodedError('VALIDATION_FAILED', RESTORE_ROLLED_BACK).toJSON() };
      }
      return result;
    });

  // The fresh installation's answer to a restore from a file: its own dispatch, for the contract's
  // input check and the audit entry (written into the restored log once it is open).
  let restoring: Attached | null = null;
  const restoreFromFile: Handler<'backup.restoreFromFile'> = async ({ path, recoveryKey }) => {
    const secrets = options.secrets ?? (await createKeytarSecretStore());
    const freshId = core.installationId;
    const prepared = await prepareRestoreFromFile({ dataDir: options.dataDir, path, recoveryKey, secrets, replaceNeverUsed: true });
    if (!core.backups.neverUsed()) {
      prepared.discard();
      throw new CodedError('CONFLICT', 'Someone started using this installation meanwhile; nothing was changed.');
    }
    const idFile = join(options.dataDir, INSTALLATION_ID_FILE);
    const idBefore = readFileSync(idFile, 'utf8');
    await restart(restoring, prepared.commit, () => {
      prepared.discard();
      writeFileSync(idFile, idBefore, { mode: 0o600 });
      undoRestore(options.dataDir);
    });
    if (freshId !== prepared.result.installationId) {
      for (const account of Object.values(keychainAccounts(freshId))) await secrets.delete(account).catch(() => false);
    }
    return prepared.result;
  };
  const freshDispatch = createDispatch({
    handlers: { 'backup.restoreFromFile': restoreFromFile } as unknown as Handlers,
    audit: (record) => core.appendAudit(record),
    logger,
  });

  return {
    current: () => core,
    appendAudit: (record) => core.appendAudit(record),
    connect(origin) {
      const a: Attached = { origin, inner: null, listeners: new Set() };
      attached.add(a);
      if (!gate && !stopped) innerOf(a);
      return {
        async dispatch(method, params) {
          while (gate) await gate.catch(() => undefined);
          if (stopped) return { ok: false, error: stopped.toJSON() };
          if (method === 'backup.restore') return restoreHere(a, params);
          if (method === 'backup.restoreFromFile' && core.backups.neverUsed()) {
            return exclusive(async () => {
              restoring = a;
              try {
                return await freshDispatch({ origin, session: null }, method, params);
              } finally {
                restoring = null;
              }
            });
          }
          return innerOf(a).dispatch(method, params);
        },
        on(listener) {
          a.listeners.add(listener);
          return () => void a.listeners.delete(listener);
        },
        close() {
          attached.delete(a);
          a.listeners.clear();
          a.inner?.close();
          a.inner = null;
        },
      };
    },
    async close() {
      while (gate) await gate.catch(() => undefined);
      if (!stopped) await core.close();
    },
  };
}
