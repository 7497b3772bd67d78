import type { Logger } from 'pino';
import pino from 'pino';
import type { RpcEventName, RpcEventPayload, RelayStatus } from '../../shared/rpc';
import { appendAudit } from './audit/auditLog';
import { openCoreStore, type CoreStore } from './db/coreStore';
import { createRecoveryService } from './keys/recovery';
import { createKeytarSecretStore, type SecretStore } from './keys/secretStore';
import { createDispatch, type AuditRecord } from './rpc/dispatch';
import { createHandlers } from './rpc/handlers';
import { createLinkManager } from './link/linkManager';
import { createWhatsApp } from './whatsapp';
import type { Core, CoreEventListener } from './types';

export interface CreateCoreOptions {
  /** Where the encrypted database and the (non-secret) installation id live. */
  dataDir: string;
  /** The OS keychain by default. Tests pass the same keychain; there is no weaker fallback. */
  secrets?: SecretStore;
  logger?: Logger;
  now?: () => number;
  /** The Graph API (`https://graph.facebook.com`, `v23.0` by default); the simulator in tests and the demo. */
  graph?: { baseUrl?: string; apiVersion?: string };
  /** How often the audit log head is signed and sent to the relay as a witness. */
  checkpointIntervalMs?: number;
}

export interface CoreHandle extends Core {
  readonly dataDir: string;
  readonly databasePath: string;
  readonly installationId: string;
  /** The relay link's current state (also pushed as `relay.stateChanged`). */
  relayStatus(): RelayStatus;
  /** For entries made before the database could be opened (the recovery of its key). */
  appendAudit(record: AuditRecord): void;
}

/**
 * The composition root of the appliance core: keys from the keychain, the encrypted store, the
 * relay link, the WhatsApp (Graph API) side, and the single RPC dispatch. Runs in a plain Node
 * process; the Electron shell, the web harness and the tests all start it through here.
 */
export async function createCore(options: CreateCoreOptions): Promise<CoreHandle> {
  const logger = options.logger ?? pino({ level: 'info', base: { part: 'core' } });
  const now = options.now ?? Date.now;
  const secrets = options.secrets ?? (await createKeytarSecretStore());
  const store: CoreStore = await openCoreStore({ dataDir: options.dataDir, secrets, logger, clock: now });
  const { db } = store;

  const listeners = new Set<CoreEventListener>();
  function emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void {
    for (const listener of listeners) {
      try {
        listener(event, payload);
      } catch (err) {
        logger.warn({ event, err: err instanceof Error ? err.name : 'error' }, 'event listener failed');
      }
    }
  }

  const whatsapp = createWhatsApp({ db, secrets, installationId: store.keys.installationId, logger, now, emit, graph: options.graph });
  // Before the link starts: no delivery may be ingested without the signature check it is owed.
  await whatsapp.loadFromKeychain();
  const link = createLinkManager({
    db,
    keys: store.keys,
    logger,
    now,
    emit,
    onIngested: (changes) => whatsapp.afterIngest(changes),
    appSecrets: () => whatsapp.appSecrets(),
    requireMetaSignature: () => whatsapp.requireMetaSignature(),
    checkpointIntervalMs: options.checkpointIntervalMs ?? 5 * 60_000,
  });

  // Wrapped once: each call runs its function inside, rather than building a new transaction per RPC.
  const inTransaction = db.transaction((fn: () => unknown) => fn());
  const dispatch = createDispatch({
    handlers: createHandlers({
      db,
      now,
      link,
      whatsapp,
      recovery: createRecoveryService({ dataDir: store.dataDir, keys: store.keys, now }),
      emit,
    }),
    audit: (record) => void appendAudit(db, record, now()),
    atomically: <T>(fn: () => T): T => inTransaction(fn) as T,
    logger,
  });

  link.start();
  whatsapp.start();

  let closing: Promise<void> | null = null;
  return {
    dataDir: store.dataDir,
    databasePath: store.databasePath,
    installationId: store.keys.installationId,
    relayStatus: () => link.status(),
    appendAudit: (record) => void appendAudit(db, record, now()),
    dispatch,
    on(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close() {
      closing ??= (async () => {
        listeners.clear();
        await whatsapp.stop();
        await link.stop();
        store.close();
        logger.info('core closed');
      })();
      return closing;
    },
  };
}
