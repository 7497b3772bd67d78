import { join } from 'node:path';
import pino from 'pino';
import { CodedError } from '../../shared/errors';
import { RPC_METHODS } from '../../shared/rpc';
import { restartable, type RestartableCore } from './backup/restartable';
import { createCore, type CreateCoreOptions } from './createCore';
import { DATABASE_FILE } from './db/coreStore';
import { hasFailedRestore, restoreFromFile, restoreRollbackFailed } from './backup/restore';
import { restoreFromRecoveryKey } from './keys/recovery';
import { createKeytarSecretStore } from './keys/secretStore';
import { createDispatch, type AuditRecord, type Handler, type Handlers } from './rpc/dispatch';
import type { Connection, Core, CoreEventListener } from './types';

/**
 * Starts the core for a window (Electron, the web harness). When the keychain has lost the
 * database key of existing data (new hardware, a wiped profile) the core cannot open, but the IT
 * admin must still be able to act from the window: it then answers every call with
 * `RECOVERY_REQUIRED` except `recovery.restore`, which puts the key back with the recovery key and
 * opens the real core in place. Any other start-up failure is thrown as before, as
 * `RESTORE_ROLLBACK_FAILED` when a restore that failed twice left its files in the folder.
 */
export async function startCore(options: CreateCoreOptions): Promise<Core> {
  try {
    // Restarts itself in place after a restore (backup/restartable.ts), so windows reattach.
    return restartable(options, await createCore(options), createCore);
  } catch (err) {
    if (err instanceof CodedError && err.code === 'RECOVERY_REQUIRED') return lockedCore(options, err);
    // The database put back by a restore that failed twice still does not open: say so, with both files named.
    if (hasFailedRestore(options.dataDir)) throw restoreRollbackFailed('at start');
    throw err;
  }
}

function lockedCore(options: CreateCoreOptions, why: CodedError): Core {
  const logger = options.logger ?? pino({ level: 'info', base: { part: 'core' } });
  let real: RestartableCore | null = null;
  let opening: Promise<RestartableCore> | null = null;
  // Attempts are audited once the database is open again: until then there is no log to write to.
  const pendingAudit: AuditRecord[] = [];
  logger.warn({ code: why.code }, 'core locked: the database key is missing from the keychain; waiting for the recovery key');

  const refuse: Handler<never> = () => {
    throw why;
  };
  const handlers = Object.fromEntries(RPC_METHODS.map((m) => [m, refuse])) as unknown as Handlers;
  handlers['recovery.restore'] = async ({ recoveryKey }) => {
    const secrets = options.secrets ?? (await createKeytarSecretStore());
    const result = await restoreFromRecoveryKey({ dataDir: options.dataDir, databasePath: join(options.dataDir, DATABASE_FILE), secrets, recoveryKey });
    opening ??= createCore({ ...options, secrets }).then((core) => {
      real = restartable({ ...options, secrets }, core, createCore);
      logger.info({ installationId: core.installationId }, 'database key restored with the recovery key; core unlocked');
      return real;
    });
    await opening;
    return result;
  };
  // New hardware with a backup file rather than the data folder: the recovery key is the credential.
  handlers['backup.restoreFromFile'] = async ({ path, recoveryKey }) => {
    const secrets = options.secrets ?? (await createKeytarSecretStore());
    const result = await restoreFromFile({ dataDir: options.dataDir, path, recoveryKey, secrets });
    opening ??= createCore({ ...options, secrets }).then((core) => (real = restartable({ ...options, secrets }, core, createCore)));
    await opening;
    return result;
  };

  const dispatch = createDispatch({
    handlers,
    audit: (record) => {
      if (record.method !== 'recovery.restore' && record.method !== 'backup.restoreFromFile') return;
      if (real) {
        for (const earlier of pendingAudit.splice(0)) real.appendAudit(earlier);
        real.appendAudit(record);
      } else {
        pendingAudit.push(record);
      }
    },
    logger,
  });

  return {
    connect(origin) {
      // Until the key is back there are no accounts to sign in to: every call but the restore
      // answers why, so the window can show the IT admin the recovery screen.
      const listeners = new Set<CoreEventListener>();
      let inner: Connection | null = null;
      const toReal = (): Connection | null => {
        if (!real) return null;
        if (!inner) {
          inner = real.connect(origin);
          inner.on((event, payload) => listeners.forEach((l) => l(event, payload)));
        }
        return inner;
      };
      return {
        async dispatch(method, params) {
          const connection = toReal();
          if (connection) return connection.dispatch(method, params);
          if (method !== 'recovery.restore' && method !== 'backup.restoreFromFile') return { ok: false, error: why.toJSON() };
          return dispatch({ origin, session: null }, method, params);
        },
        on(listener) {
          listeners.add(listener);
          return () => void listeners.delete(listener);
        },
        close() {
          listeners.clear();
          inner?.close();
        },
      };
    },
    async close() {
      const core = opening ? await opening.catch(() => null) : null;
      await core?.close();
    },
  };
}
