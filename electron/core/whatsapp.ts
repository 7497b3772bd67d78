import type { Logger } from 'pino';
import { z } from 'zod';
import { CodedError } from '../../shared/errors';
import type { RpcEventName, RpcEventPayload, Template, WhatsAppStatus } from '../../shared/rpc';
import type { StatusChange } from './db/repo/outbox';
import { getSetting, setSetting } from './db/repo/settings';
import { discoverInboundMedia, getMediaContent, mediaRowForMessage } from './db/repo/media';
import { listTemplates } from './db/repo/templates';
import { syncTemplates } from './graph/templateSync';
import { createMediaDownloader, type MediaDownloader } from './media/downloader';
import { stmt } from './db/statements';
import type { Database } from './db/types';
import { createGraphClient, type GraphClient, type PhoneNumberInfo } from './graph/client';
import { GraphError } from './graph/errors';
import { keychainAccounts } from './keys/accounts';
import type { SecretStore } from './keys/secretStore';
import { loadPairing } from './link/pairing';
import {
  recheckShelvedSignatures,
  resetSignatureCounters,
  shelvedSignatureFailures,
  signatureCounter,
  SIGNATURE_COUNTERS,
  type IngestResult,
} from './link/delivery';
import { ingestTrace } from './ingest/trace';
import { appSecretKeys, StoredAppSecretsSchema, type AppSecretKeys } from './link/metaSignature';
import { createOutboundFiles } from './media/outboundFiles';
import { createOutboxWorker, type OutboxWorker } from './outbox/worker';
import { markRead, queueMediaSend, react, sendTemplate, sendText } from './outbox/sendService';
import { assertTemplateAllowed } from './privacy/consent';
import { guardOutgoingText } from './privacy/guard';
import type { MessageView } from '../../shared/rpc';

/** Non-secret WhatsApp settings; the access token itself lives in the keychain. */
const WhatsAppConfigSchema = z.object({
  wabaId: z.string(),
  graphBaseUrl: z.string().url(),
  apiVersion: z.string(),
});
type WhatsAppConfig = z.infer<typeof WhatsAppConfigSchema>;
const CONFIG_KEY = 'whatsapp_config';
/** How long the in-memory copy of the access token is used before the keychain is asked again. */
const TOKEN_REREAD_MS = 60_000;
/** When the current app secrets were set (ms); the signature counts run from there. */
const SIGNATURE_SINCE_KEY = 'meta_signature_since';
/** '1' while only Meta-signed deliveries may reach the inbox (relay-kind ones are shelved). */
const SIGNATURE_REQUIRED_KEY = 'meta_signature_required';

export const DEFAULT_GRAPH = { baseUrl: 'https://graph.facebook.com', apiVersion: 'v23.0' } as const;

export interface WhatsAppDeps {
  db: Database;
  secrets: SecretStore;
  installationId: string;
  logger: Logger;
  now: () => number;
  emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  /** Overrides for the Graph API location (the simulator in tests and the demo). */
  graph?: { baseUrl?: string; apiVersion?: string } | undefined;
  /**
   * A sent message's status changed outside ingest: the outbox settled it, or a status webhook that
   * beat the Graph API's answer was applied when the wamid became known (privacy reads Meta's opt-out).
   */
  onOutboundStatus?: (change: StatusChange) => void;
  /** The database file and key, for the thread that stores outgoing files beside the event loop. */
  database: { path: string; key: Uint8Array };
}

/** A send-service call as staff make it: the author is the session's user, the time is now. */
type StaffSend<F extends (db: Database, p: never) => unknown> = Omit<Parameters<F>[1], 'now' | 'authorUserId'> & { userId: string };

export interface WhatsAppService {
  start(): void;
  stop(): Promise<void>;
  status(): WhatsAppStatus;
  /**
   * Checks the token against the Graph API before keeping anything. `appSecret`: the Meta app
   * secret(s) to check webhook signatures with (absent: keep what is set; null: stop checking);
   * shelved deliveries that verify under new secrets are applied at once.
   */
  configure(input: {
    wabaId: string;
    accessToken: string;
    graphBaseUrl?: string;
    appSecret?: readonly string[] | null;
    /**
     * Only Meta-signed deliveries reach the inbox (absent: keep the setting). Needs an app secret,
     * stored or given (VALIDATION_FAILED otherwise, before anything changes); removing the secret
     * turns it off too. Turning it off applies the deliveries it had shelved.
     */
    requireMetaSignature?: boolean;
  }): Promise<WhatsAppStatus>;
  /** Reads the app secrets (and whether a token is there) from the keychain; the core awaits this before the relay link starts. */
  loadFromKeychain(): Promise<void>;
  /** The app secrets for the relay link's ingest (null: not set up); read from memory, never the keychain. */
  appSecrets(): AppSecretKeys | null;
  /** Whether relay-kind deliveries are shelved rather than applied; read from memory. Only takes effect with app secrets. */
  requireMetaSignature(): boolean;
  /** Each send stores the message and its outbox row, then nudges the worker; returns the message id. */
  sendText(p: StaffSend<typeof sendText>): number;
  sendTemplate(p: StaffSend<typeof sendTemplate>): number;
  /**
   * Resolves once the file is on the disk (the upload, started as soon as `commit` returns, is under
   * way by then). `commit` runs the message's rows (the RPC's `commitWithAudit`: with the call's
   * audit entry, before any byte leaves the computer).
   */
  sendMedia(p: StaffSend<typeof queueMediaSend> & { commit?: <T>(write: () => T) => T }): Promise<number>;
  /** The clinic's reaction to a patient's message (empty emoji: removed); false when nothing changed. */
  react(p: StaffSend<typeof react>): boolean;
  /** An automatic reply with no author (a privacy keyword's confirmation); the window rules still apply. */
  sendAutomaticText(conversationId: number, text: string): number;
  /** Queues a read receipt to Meta for the conversation's newest inbound message. */
  markRead(conversationId: number): void;
  listTemplates(): Template[];
  syncTemplates(): Promise<number>;
  /** The business account id and Meta's view of its phone numbers (nothing when not set up). */
  account(): Promise<{ wabaId: string | null; phoneNumbers: PhoneNumberInfo[] }>;
  /** The file a message shows (by its message for the clinic's own, by Meta's id for the patient's). */
  mediaRef(messageId: number, metaMediaId: string): MessageView['media'];
  getMedia(mediaRowId: number): { mimeType: string; filename: string | null; data: Buffer; contactId: number };
  /** After each committed relay delivery: UI events, media to fetch, outbox reconciliation. */
  afterIngest(result: IngestResult): void;
}

/**
 * The clinic's side of WhatsApp: the Graph API client with the token from the keychain, the
 * outbox worker that sends what staff wrote, template sync, and the media rows of what patients sent.
 */
export function createWhatsApp(deps: WhatsAppDeps): WhatsAppService {
  const { db, secrets, logger, now, emit } = deps;
  const log = logger.child({ part: 'whatsapp' });
  const tokenAccount = keychainAccounts(deps.installationId).whatsappAccessToken;
  const appSecretAccount = keychainAccounts(deps.installationId).whatsappAppSecret;
  /** Loaded once from the keychain (and on every change); an empty list fails every signature (closed). */
  let appSecrets: AppSecretKeys | null = null;
  /** Read once here and kept in memory on every change, so ingest never reads it per delivery. */
  let signatureRequired = getSetting(db, SIGNATURE_REQUIRED_KEY) === '1';

  function config(): WhatsAppConfig | null {
    const raw = getSetting(db, CONFIG_KEY);
    if (raw === null) return null;
    const parsed = WhatsAppConfigSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  // The token as last read from the keychain. Every Graph API request needs it, and a keychain read
  // (a D-Bus round trip to the keyring daemon on Linux) took 2-24 ms on the shared test machine, twice
  // on the way to each file's tick. This process changes the token only in setup, which drops the
  // copy; a change made outside the app (secret-tool) applies within TOKEN_REREAD_MS.
  let tokenCopy: { value: string; readAt: number } | null = null;
  /** Bumped after every change of the token, so a read that was under way keeps no stale copy. */
  let tokenGeneration = 0;
  function dropTokenCopy(): void {
    tokenCopy = null;
    tokenGeneration += 1;
  }
  async function getAccessToken(): Promise<string> {
    if (tokenCopy && performance.now() - tokenCopy.readAt < TOKEN_REREAD_MS) return tokenCopy.value;
    const generation = tokenGeneration;
    const token = await secrets.get(tokenAccount);
    if (!token) throw new CodedError('WHATSAPP_TOKEN_EXPIRED', 'No WhatsApp access token is set up yet. An admin can add it in Setup.');
    if (generation === tokenGeneration) tokenCopy = { value: token, readAt: performance.now() };
    return token;
  }

  function makeClient(c: WhatsAppConfig | null): GraphClient {
    return createGraphClient({
      baseUrl: c?.graphBaseUrl ?? deps.graph?.baseUrl ?? DEFAULT_GRAPH.baseUrl,
      apiVersion: c?.apiVersion ?? deps.graph?.apiVersion ?? DEFAULT_GRAPH.apiVersion,
      getAccessToken,
      logger,
    });
  }

  const files = createOutboundFiles({ db, database: deps.database, logger, now });
  let client = makeClient(config());
  let worker: OutboxWorker | null = null;
  let downloader: MediaDownloader | null = null;
  let tokenExpired = false;
  /**
   * The account is set up in the database but this keychain has no token (the data was restored on
   * new hardware): not configured, so the wizard asks for it, and nothing is sent until then.
   */
  let tokenMissing = false;

  function enqueued({ messageId }: { messageId: number }): number {
    worker?.kick();
    return messageId;
  }

  function currentStatus(): WhatsAppStatus {
    const sinceSetting = getSetting(db, SIGNATURE_SINCE_KEY);
    const since = appSecrets !== null && sinceSetting !== null ? Number(sinceSetting) : null;
    const failures = shelvedSignatureFailures(db, since);
    return {
      configured: config() !== null && !tokenMissing,
      tokenExpired,
      phoneNumberIds: loadPairing(db)?.phoneNumberIds ?? [],
      signatureCheck: {
        enabled: appSecrets !== null,
        secrets: appSecrets?.length ?? 0,
        since,
        verified: signatureCounter(db, SIGNATURE_COUNTERS.verified),
        failed: failures.count,
        failedSince: since === null ? 0 : failures.countSince,
        lastFailedAt: failures.lastAt,
        relayVouched: signatureCounter(db, SIGNATURE_COUNTERS.relayVouched),
        required: appSecrets !== null && signatureRequired,
      },
      ingest: ingestTrace(db),
    };
  }

  // A backlog of deliveries failing the signature check is one status change, not thousands.
  let statusEmitQueued = false;
  function emitStatusSoon(): void {
    if (statusEmitQueued) return;
    statusEmitQueued = true;
    setImmediate(() => {
      statusEmitQueued = false;
      emit('whatsapp.stateChanged', currentStatus());
    });
  }

  async function loadFromKeychain(): Promise<void> {
    tokenMissing = config() !== null && (await secrets.get(tokenAccount)) === null;
    if (tokenMissing) log.warn('WhatsApp is set up but the keychain holds no access token; an admin must enter it again');
    const stored = await secrets.get(appSecretAccount);
    if (stored === null) {
      appSecrets = null;
      return;
    }
    let parsed: string[] | null = null;
    try {
      const result = StoredAppSecretsSchema.safeParse(JSON.parse(stored));
      if (result.success) parsed = result.data;
    } catch {
      // handled below
    }
    if (!parsed) {
      // Fail closed: an unreadable entry must not quietly turn the check off.
      log.error('the keychain entry for the Meta app secret is unreadable; every webhook will be shelved until an admin enters the app secret again');
      appSecrets = [];
      return;
    }
    appSecrets = appSecretKeys(parsed);
  }

  /** Keychain first, then memory: a failed keychain write changes nothing. */
  async function setAppSecrets(next: readonly string[] | null): Promise<void> {
    if (next === null) {
      await secrets.delete(appSecretAccount);
      appSecrets = null;
      db.prepare('DELETE FROM settings WHERE key = ?').run(SIGNATURE_SINCE_KEY);
      resetSignatureCounters(db);
      log.info('meta signature checking turned off');
      return;
    }
    await secrets.set(appSecretAccount, JSON.stringify(next));
    appSecrets = appSecretKeys(next);
    // Entering the secret (again) starts a new tally: what still fails after the re-check below
    // predates it, so the UI can tell "failing now" from "looked at and left shelved".
    setSetting(db, SIGNATURE_SINCE_KEY, String(now()), now());
    resetSignatureCounters(db);
    log.info({ secrets: next.length }, 'meta signature checking on');
  }

  /**
   * New secrets and/or a new "only Meta-signed" setting, then one re-check of what was shelved under
   * the result: deliveries that now verify, or relay-kind ones no longer refused, are applied.
   */
  async function setSignaturePolicy(nextSecrets: readonly string[] | null | undefined, nextRequired: boolean | undefined): Promise<void> {
    if (nextSecrets !== undefined) await setAppSecrets(nextSecrets);
    // Nothing to require without a secret: removing the secret removes the requirement with it.
    const required = appSecrets === null ? false : nextRequired;
    const requiredChanged = required !== undefined && required !== signatureRequired;
    if (required !== undefined) {
      setSetting(db, SIGNATURE_REQUIRED_KEY, required ? '1' : '0', now());
      signatureRequired = required;
    }
    if (requiredChanged) log.info({ required }, 'meta signature requirement changed');
    if (appSecrets === null || (nextSecrets === undefined && !requiredChanged)) return;
    const recheck = recheckShelvedSignatures(db, appSecrets, now(), signatureRequired);
    log.info({ recovered: recheck.applied.length, stillFailing: recheck.stillFailing }, 'shelved webhooks checked again');
    for (const result of recheck.applied) afterIngest(result);
  }

  function startWorker(): void {
    worker = createOutboxWorker({
      db,
      client,
      getAccessToken,
      logger,
      now,
      onStatusChanged: (change) => {
        emit('message.statusChanged', {
          conversationId: change.conversationId,
          messageId: change.messageId,
          status: change.status as RpcEventPayload<'message.statusChanged'>['status'],
        });
        deps.onOutboundStatus?.(change);
      },
      onReactionChanged: (change) => emit('message.updated', { conversationId: change.conversationId, messageId: change.messageId }),
      files,
      onTokenStateChanged: (expired) => {
        tokenExpired = expired;
        emit('whatsapp.stateChanged', currentStatus());
      },
    });
    worker.start();
    downloader = createMediaDownloader({
      db,
      client,
      logger,
      now,
      onChanged: (change) => {
        if (change.conversationId !== null) {
          emit('message.updated', { conversationId: change.conversationId, messageId: change.messageId });
        }
      },
    });
    downloader.start();
  }

  async function stopWorkers(): Promise<void> {
    await Promise.all([worker?.stop(), downloader?.stop()]);
    worker = null;
    downloader = null;
  }

  return {
    start() {
      if (config() && !tokenMissing) startWorker();
    },
    async stop() {
      await stopWorkers();
      await files.close();
    },
    status: currentStatus,

    async configure(input) {
      if (input.requireMetaSignature === true && (input.appSecret === undefined ? appSecrets === null : input.appSecret === null)) {
        throw new CodedError(
          'VALIDATION_FAILED',
          'Showing only messages Meta signed needs the Meta app secret: enter it in the App secret field (App settings > Basic in Meta), or leave this off.',
        );
      }
      const next: WhatsAppConfig = {
        wabaId: input.wabaId,
        graphBaseUrl: input.graphBaseUrl ?? deps.graph?.baseUrl ?? DEFAULT_GRAPH.baseUrl,
        apiVersion: deps.graph?.apiVersion ?? DEFAULT_GRAPH.apiVersion,
      };
      const previous = await secrets.get(tokenAccount);
      await secrets.set(tokenAccount, input.accessToken);
      dropTokenCopy();
      // Prove the token and account before keeping them: Meta answers 190 for a bad token.
      const candidate = makeClient(next);
      let templates: { count: number };
      try {
        templates = await syncTemplates({ db, client: candidate, wabaId: next.wabaId, now, logger });
      } catch (err) {
        if (previous === null) await secrets.delete(tokenAccount);
        else await secrets.set(tokenAccount, previous);
        dropTokenCopy();
        throw setupError(err);
      }
      setSetting(db, CONFIG_KEY, JSON.stringify(next), now());
      client = candidate;
      tokenExpired = false;
      tokenMissing = false;
      await stopWorkers();
      startWorker();
      // After the token is in use: a keychain failure here reports an error without leaving the token half-applied.
      if (input.appSecret !== undefined || input.requireMetaSignature !== undefined) await setSignaturePolicy(input.appSecret, input.requireMetaSignature);
      log.info({ templates: templates.count }, 'whatsapp configured');
      const status = currentStatus();
      emit('whatsapp.stateChanged', status);
      return status;
    },

    // Staff text, captions and what they type into a template's variables pass the personal-data
    // guard (it refuses only in block mode). Each variable is checked on its own, as the template
    // picker checks them: the template's own approved text is the clinic's, never a finding.
    sendText: ({ userId, ...p }) => {
      guardOutgoingText(db, p.text);
      return enqueued(sendText(db, { ...p, authorUserId: userId, now: now() }));
    },
    sendTemplate: ({ userId, ...p }) => {
      // An opt-out is the reason that matters (no template goes at all), so it is checked first.
      assertTemplateAllowed(db, p.conversationId);
      for (const value of p.parameters ?? []) guardOutgoingText(db, value);
      return enqueued(sendTemplate(db, { ...p, authorUserId: userId, now: now() }));
    },
    sendMedia: async ({ userId, commit = (write) => db.transaction(write)(), ...p }) => {
      guardOutgoingText(db, p.caption);
      // Let a caller's open transaction end first (the dispatch runs a handler's first steps in
      // one): until it commits, the writer thread's connection could not store the file.
      await Promise.resolve();
      const file = files.begin(p.bytes);
      let queued: ReturnType<typeof queueMediaSend>;
      try {
        queued = commit(() => queueMediaSend(db, { ...p, authorUserId: userId, now: now() }));
      } catch (err) {
        file.cancel();
        throw err;
      }
      // Uploaded at once unless sending is paused or not set up (then the outbox uploads it in turn).
      const sending = worker && !worker.tokenExpired ? client : null;
      const stored = file.store(
        { mediaRowId: queued.mediaRowId, phoneNumberId: queued.phoneNumberId, mimeType: queued.mimeType, filename: queued.filename },
        sending ? (bytes) => sending.uploadMedia({ phoneNumberId: queued.phoneNumberId, bytes, mimeType: queued.mimeType, filename: queued.filename ?? 'file' }) : undefined,
      );
      enqueued(queued);
      await stored;
      return queued.messageId;
    },
    react: ({ userId, ...p }) => {
      const { queued } = react(db, { ...p, authorUserId: userId, now: now() });
      if (queued) worker?.kick();
      return queued;
    },
    sendAutomaticText: (conversationId, text) => enqueued(sendText(db, { conversationId, text, authorUserId: null, now: now() })),

    markRead(conversationId) {
      if (markRead(db, { conversationId, now: now() }).queued) worker?.kick();
    },

    listTemplates: () => listTemplates(db, { approvedOnly: true }),

    async syncTemplates() {
      const c = config();
      if (!c) throw new CodedError('NOT_FOUND', 'WhatsApp is not set up yet: add the business account and token first.');
      return (await syncTemplates({ db, client, wabaId: c.wabaId, now, logger })).count;
    },

    async account() {
      const c = config();
      if (!c || tokenMissing) return { wabaId: c?.wabaId ?? null, phoneNumbers: [] };
      return { wabaId: c.wabaId, phoneNumbers: await client.listPhoneNumbers({ wabaId: c.wabaId }) };
    },

    mediaRef: (messageId, metaMediaId) => mediaRowForMessage(db, { messageId, metaMediaId }),

    getMedia(mediaRowId) {
      const content = getMediaContent(db, mediaRowId);
      const owner = stmt(
        db,
        `SELECT c.contact_id FROM media x JOIN messages m ON m.id = x.message_id JOIN conversations c ON c.id = m.conversation_id WHERE x.id = ?`,
      ).get(mediaRowId) as { contact_id: number } | undefined;
      if (!content || !owner) throw new CodedError('NOT_FOUND', `Media ${mediaRowId} is not (yet) stored on this computer.`);
      return { mimeType: content.mimeType, filename: content.filename, data: content.content, contactId: owner.contact_id };
    },

    loadFromKeychain,
    appSecrets: () => appSecrets,
    requireMetaSignature: () => signatureRequired,
    afterIngest,
  };

  function afterIngest(result: IngestResult): void {
    if (result.signature === 'mismatch') {
      log.warn({ seq: result.relaySeq }, 'webhook failed the Meta signature check; shelved, not shown');
      emitStatusSoon();
    }
    if (result.newMessages.length > 0) {
      // Rows now, so the thread shows "downloading…" at once; bytes follow (Meta's URLs expire in minutes).
      // Only this delivery's messages are looked at: a scan of every media message per delivery
      // made a backlog's ingest slow down as the inbox grew.
      discoverInboundMedia(
        db,
        now(),
        result.newMessages.map((m) => m.messageId),
      );
      downloader?.kick({ discover: false });
    }
    for (const m of result.newMessages) emit('message.received', { conversationId: m.conversationId, messageId: m.messageId });
    for (const s of result.statusChanges) {
      emit('message.statusChanged', {
        conversationId: s.conversationId,
        messageId: s.messageId,
        status: s.status as RpcEventPayload<'message.statusChanged'>['status'],
      });
    }
    for (const conversationId of new Set(result.reactionChanges.map((r) => r.conversationId))) {
      emit('message.updated', { conversationId, messageId: null });
    }
    // Edits, deletions and call events change a message already shown.
    for (const c of result.messageChanges) emit('message.updated', { conversationId: c.conversationId, messageId: c.messageId });
    // Something the admin's status counts (shelved, ignored, Meta's errors, cannot-show-yet) moved.
    if (result.deadLettered || result.counts.shelved > 0 || result.counts.valueErrors > 0 || result.counts.unsupportedMessages > 0) emitStatusSoon();
    for (const conversationId of result.conversationIds) emit('conversation.updated', { conversationId });
    if (result.statusChanges.length > 0) worker?.kick();
  }
}

/**
 * What the set-up form says when Meta refuses the token or the account, by Meta's codes (never its
 * wording): 190/463 expired, other 190 not a token Meta accepts, 200/10 a token without rights on
 * this business account, 100/33 an account id the token cannot see.
 */
function setupError(err: unknown): CodedError {
  if (!(err instanceof CodedError)) return new CodedError('UNAVAILABLE', 'The WhatsApp Graph API could not be reached.');
  if (!(err instanceof GraphError) || err.metaCode === null) return err;
  if (err.metaCode === 190 && err.metaSubcode === 463) return new CodedError('WHATSAPP_TOKEN_EXPIRED', 'Meta says this access token has expired: create a new one.');
  if (err.metaCode === 190) return new CodedError('WHATSAPP_TOKEN_INVALID', 'Meta does not accept this access token: copy it again in full.');
  if (err.metaCode === 200 || err.metaCode === 10 || (err.metaCode >= 200 && err.metaCode < 300)) {
    return new CodedError('WHATSAPP_TOKEN_NOT_FOR_ACCOUNT', 'This access token is not valid for this WhatsApp Business Account.');
  }
  if (err.metaCode === 100 && err.metaSubcode === 33) {
    return new CodedError('WHATSAPP_ACCOUNT_UNKNOWN', 'Meta knows no WhatsApp Business Account with this id that this token can see.');
  }
  return err;
}
