import type { Logger } from 'pino';
import pino from 'pino';
import { CodedError } from '../../shared/errors';
import type { RelayStatus, RpcResult } from '../../shared/rpc';
import { createAnomalies } from './accounts/anomalies';
import { createAccountHandlers } from './accounts/handlers';
import { createConnections } from './accounts/connections';
import { getUserByUsername } from './accounts/repo';
import type { HashCost } from './accounts/passwords';
import { createSealer } from './accounts/seal';
import { createAccounts } from './accounts/service';
import { appendAudit } from './audit/auditLog';
import { createAuditHandlers } from './audit/handlers';
import { createAuditCommits } from './audit/readCommits';
import { createBackupHandlers } from './backup/handlers';
import { createBackupService, type BackupService } from './backup/service';
import type { GoogleEndpoints } from './calendar/google';
import { createCalendarHandlers } from './calendar/handlers';
import { createCalendar, type CalendarService } from './calendar/service';
import { openCoreStore, type CoreStore } from './db/coreStore';
import { createEventsHandlers, observeHandlers, publishBooking } from './events/handlers';
import { createEvents, type EventsService } from './events/service';
import { createRecoveryService, unwrapWithRecoveryKey } from './keys/recovery';
import { createKeytarSecretStore, type SecretStore } from './keys/secretStore';
import { createDispatch, type AuditRecord, type Dispatch, type Handlers } from './rpc/dispatch';
import { createHandlers } from './rpc/handlers';
import { createLinkManager } from './link/linkManager';
import { createPrivacyHandlers } from './privacy/handlers';
import { createPrivacy } from './privacy/service';
import { createSettingsHandlers } from './settings/handlers';
import { readManagedPolicy, type ManagedPolicyOptions, type PolicyFileReading } from './settings/policyFile';
import { createSettingsService } from './settings/service';
import { createWhatsApp } from './whatsapp';
import type { Core, Session } from './types';

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
  /** argon2id's cost for passwords and PINs; lowered only by tests and benchmarks that are not about it. */
  passwordHashCost?: HashCost;
  /** The managed policy file (the OS's location by default); null: no policy (tests, benchmarks). */
  policyPath?: string | null;
  /** The OS the policy is read as (this one by default): tests read a Windows desk's registry through an injected reg.exe. */
  policyFrom?: Pick<ManagedPolicyOptions, 'platform' | 'env' | 'runReg'>;
  /** Google's OAuth and Calendar endpoints (Google by default); the simulator in tests, the benchmark and the demo. */
  google?: Partial<GoogleEndpoints>;
  /** Extra CA certificates trusted for event subscribers' HTTPS (a clinic's own CA; a test's self-signed server). */
  events?: { ca?: string | string[] };
}

export interface CoreHandle extends Core {
  readonly dataDir: string;
  readonly databasePath: string;
  readonly installationId: string;
  /** Backups of this installation (the console's `backup`/`backups` commands, tests). */
  readonly backups: BackupService;
  /** Booking through Google Calendar and its reminders; event subscriptions (tests drive their loops). */
  readonly calendar: CalendarService;
  readonly events: EventsService;
  /** The relay link's current state (also pushed as `relay.stateChanged`). */
  relayStatus(): RelayStatus;
  /** For entries made before the database could be opened (the recovery of its key). */
  appendAudit(record: AuditRecord): void;
  /** How many connections are open (windows, harness pages, tests). */
  connectionCount(): number;
  /**
   * The headless CLI's door: a named local operator who may run only the console's IT-admin
   * commands (never patient data), each audited under the operator's name.
   */
  console(operator: string): (method: ConsoleMethod, params: unknown) => Promise<RpcResult<unknown>>;
  /** The locked-out IT admin: with the recovery key, give a user a one-time password (audited). */
  adminReset(operator: string, username: string, recoveryKey: string): Promise<{ oneTimePassword: string }>;
}

/** What the console operator may call: checks and keys, never a patient. */
export const CONSOLE_METHODS = ['audit.verify', 'audit.query', 'audit.export', 'recovery.create', 'setup.pair'] as const;
export type ConsoleMethod = (typeof CONSOLE_METHODS)[number];

/**
 * The composition root of the appliance core: keys from the keychain, the encrypted store, the
 * relay link, the WhatsApp (Graph API) side, and the single RPC dispatch. Runs in a plain Node
 * process; the Electron shell, the web harness and the tests all start it through here.
 */
const NO_POLICY: PolicyFileReading = { path: '', found: false, policy: {}, problems: [] };

export async function createCore(options: CreateCoreOptions): Promise<CoreHandle> {
  const logger = options.logger ?? pino({ level: 'info', base: { part: 'core' } });
  const now = options.now ?? Date.now;
  // Started first and awaited where it is applied, so reg.exe (Windows) runs while the store opens.
  const policyReading = options.policyPath === null ? Promise.resolve(NO_POLICY) : readManagedPolicy({ ...options.policyFrom, ...(options.policyPath ? { filePath: options.policyPath } : {}) });
  const secrets = options.secrets ?? (await createKeytarSecretStore());
  const store: CoreStore = await openCoreStore({ dataDir: options.dataDir, secrets, logger, clock: now });
  const { db } = store;

  const accounts = createAccounts({ db, now, logger, sealer: createSealer(store.keys.databaseKey, 'accounts'), hashCost: options.passwordHashCost });
  let dispatch: Dispatch | null = null;
  const connections = createConnections({ accounts, logger, dispatch: () => dispatch! });
  // Events for other systems (issue 14) watch the same push events the windows get.
  const events = createEvents({
    db,
    now,
    logger,
    sealer: createSealer(store.keys.databaseKey, 'events'),
    installationId: store.keys.installationId,
    databasePath: store.databasePath,
    databaseKey: store.keys.databaseKey,
    ca: options.events?.ca,
  });
  const emit: typeof connections.broadcast = (event, payload) => {
    connections.broadcast(event, payload);
    events.observe(event, payload);
  };

  const whatsapp = createWhatsApp({
    db,
    secrets,
    installationId: store.keys.installationId,
    logger,
    now,
    emit,
    graph: options.graph,
    // Created below; called only once the outbox runs.
    onOutboundStatus: (change) => privacy.afterOutboundStatus(change),
    database: { path: store.databasePath, key: store.keys.databaseKey },
  });
  // Before the link starts: no delivery may be ingested without the signature check it is owed.
  await whatsapp.loadFromKeychain();
  // Privacy (issue 11): keywords and Meta's opt-out signal after each delivery, retention's daily job.
  const privacy = createPrivacy({
    db,
    now,
    logger,
    emit,
    audit: (record) => void appendAudit(db, record, now()),
    sendAutomatic: (conversationId, text) => whatsapp.sendAutomaticText(conversationId, text),
  });
  const link = createLinkManager({
    db,
    keys: store.keys,
    logger,
    now,
    emit,
    // Events about what a batch stored commit with it (no second commit, nothing lost to a crash between).
    inCommit: (results) => events.enqueueIngested(results),
    onIngested: (changes) => {
      whatsapp.afterIngest(changes);
      privacy.afterIngest(changes);
    },
    appSecrets: () => whatsapp.appSecrets(),
    requireMetaSignature: () => whatsapp.requireMetaSignature(),
    checkpointIntervalMs: options.checkpointIntervalMs ?? 5 * 60_000,
  });

  // Booking (issue 14): Google Calendar, reminders by template, booking events for subscribers.
  const calendar = createCalendar({
    db,
    now,
    logger,
    secrets,
    installationId: store.keys.installationId,
    emit,
    audit: (record) => void appendAudit(db, record, now()),
    sendTemplate: (conversationId, name, language, parameters) => whatsapp.sendTemplate({ userId: 'system', conversationId, name, language, parameters }),
    onBooking: (change) => publishBooking(events, change),
    google: options.google,
  });
  await calendar.load();

  const anomalies = createAnomalies({ db, now, settings: () => accounts.settings(), audit: (record) => void appendAudit(db, record, now()), broadcast: emit, logger });

  // Backups (issue 12): the service, its scheduler and its RPC slice.
  const backups = createBackupService({ db, dataDir: store.dataDir, databasePath: store.databasePath, installationId: store.keys.installationId, databaseKey: store.keys.databaseKey, now, logger, emit });
  const backupHandlers = createBackupHandlers({ db, now, backups, dataDir: store.dataDir, installationId: store.keys.installationId, databaseKey: store.keys.databaseKey });

  // Managed policy (issue 13): applied over the settings key by key, then guarding their handlers.
  const reading = await policyReading;
  const settings = createSettingsService({ db, now, logger, dataDir: store.dataDir, installationId: store.keys.installationId, reading, accounts, backups });
  settings.apply();

  const handlers: Handlers = {
    ...createHandlers({
      db,
      now,
      link,
      whatsapp,
      recovery: createRecoveryService({ dataDir: store.dataDir, keys: store.keys, now }),
      emit,
    }),
    ...createAccountHandlers({
      db,
      now,
      accounts,
      connections: () => connections,
      onSignIn: (session) => anomalies.afterSignIn(session),
      onSignInFailed: (attempt) => anomalies.afterSignInFailed(attempt),
    }),
    ...createAuditHandlers({
      db,
      now,
      link,
      installationId: store.keys.installationId,
      signing: store.keys.signing,
      database: { path: store.databasePath, key: store.keys.databaseKey },
    }),
    ...backupHandlers,
    ...createPrivacyHandlers({ db, now, privacy }),
    ...createSettingsHandlers({
      db,
      now,
      dataDir: store.dataDir,
      databasePath: store.databasePath,
      installationId: store.keys.installationId,
      keychainBackend: store.keys.backend,
      relay: () => link.status(),
      whatsapp: () => whatsapp.status(),
      backups,
      settings,
      securitySettings: () => accounts.settings(),
      backupSettings: () => backups.settings(),
    }),
    ...createCalendarHandlers(calendar),
    ...createEventsHandlers(events),
  };
  settings.guard(handlers);
  observeHandlers(handlers, events, db);
  // Reads commit their audit entry without waiting for the disk; state changes wait (see readCommits.ts).
  const auditCommits = createAuditCommits({ db, now, logger, afterAppend: (record) => anomalies.afterRead(record) });
  dispatch = createDispatch({
    handlers,
    audit: auditCommits.audit,
    atomically: auditCommits.atomically,
    hasBreakGlass: (session, contactId) => accounts.hasBreakGlass(session, contactId),
    logger,
  });
  const sweep = setInterval(() => connections.sweep(), 60_000);
  sweep.unref();

  link.start();
  whatsapp.start();
  privacy.start();
  backups.start({ migrated: store.migrated });
  calendar.start();
  events.start();

  let closing: Promise<void> | null = null;
  return {
    dataDir: store.dataDir,
    databasePath: store.databasePath,
    installationId: store.keys.installationId,
    relayStatus: () => link.status(),
    backups,
    calendar,
    events,
    appendAudit: (record) => void appendAudit(db, record, now()),
    connect: (origin) => connections.connect(origin),
    console(operator) {
      const session: Session = {
        id: `console:${process.pid}`,
        userId: 'console',
        username: operator,
        displayName: `Console operator ${operator}`,
        roles: ['admin', 'auditor'],
        state: 'active',
        origin: 'cli',
      };
      return (method, params) => {
        if (!(CONSOLE_METHODS as readonly string[]).includes(method)) {
          return Promise.resolve({ ok: false, error: { code: 'FORBIDDEN', message: `The console may not use ${String(method)}.` } });
        }
        return dispatch!({ origin: 'cli', session }, method, params);
      };
    },
    async adminReset(operator, username, recoveryKey) {
      const who = { userId: 'console', displayName: `Console operator ${operator}`, role: 'admin', sessionId: null, origin: 'cli', method: 'cli.admin-reset', contactIds: [] };
      try {
        const { installationId } = unwrapWithRecoveryKey(store.dataDir, recoveryKey);
        if (installationId !== store.keys.installationId) throw new CodedError('RECOVERY_KEY_WRONG', 'This recovery key belongs to another installation.');
      } catch (err) {
        appendAudit(db, { ...who, action: 'login_failed', outcome: 'denied', errorCode: err instanceof CodedError ? err.code : 'INTERNAL' }, now());
        throw err;
      }
      const user = getUserByUsername(db, username.trim().toLowerCase());
      if (!user) throw new CodedError('NOT_FOUND', `There is no user ${username}.`);
      const { oneTimePassword, endedSessions } = await accounts.resetPassword(user.id);
      accounts.unlockUser(user.id);
      endedSessions.forEach((id) => connections.sessionEnded(id, 'password_reset'));
      appendAudit(db, { ...who, action: 'update', outcome: 'ok', reason: `one-time password for ${user.id}` }, now());
      return { oneTimePassword };
    },
    connectionCount: () => connections.count(),
    close() {
      closing ??= (async () => {
        clearInterval(sweep);
        connections.closeAll();
        await whatsapp.stop();
        await backups.stop();
        await privacy.stop();
        await calendar.stop();
        await events.stop();
        await link.stop();
        auditCommits.close();
        store.close();
        logger.info('core closed');
      })();
      return closing;
    },
  };
}
