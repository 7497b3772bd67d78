import { sign as edSign } from 'node:crypto';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import type { RelayStatus, RpcEventName, RpcEventPayload } from '../../../shared/rpc';
import { compareWithWitness, makeCheckpoint, markCheckpointWitnessed, type WitnessVerdict } from '../audit/auditLog';
import type { Database } from '../db/types';
import { ingestDelivery, type IngestResult, shelveUnopenable } from './delivery';
import type { AppSecretKeys } from './metaSignature';
import type { CoreKeys } from '../keys/coreKeys';
import { enrolWithRelay } from './enrol';
import { createIngestLog } from '../ingest/log';
import { createEnvelopeOpener } from './openEnvelope';
import { loadPairing, savePairing, type Pairing } from './pairing';
import { createRelayLink, type OpenedDelivery, type RelayLink } from './relayLink';

export interface LinkManagerDeps {
  db: Database;
  keys: CoreKeys;
  logger: Logger;
  now: () => number;
  emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  /** Runs after each committed delivery (media downloads, UI events). Never throws into the link. */
  onIngested(result: IngestResult): void;
  /** Runs inside each batch's transaction, after its deliveries were applied: work that must commit with them. */
  inCommit?(results: readonly IngestResult[]): void;
  /** This clinic's Meta app secrets, to check each webhook's signature (null: not set up). Read per batch, from memory. */
  appSecrets?: () => AppSecretKeys | null;
  /** Whether only Meta-signed deliveries may be applied (relay-kind ones shelved). Read per batch, from memory. */
  requireMetaSignature?: () => boolean;
  checkpointIntervalMs: number;
  /** How often the info-level ingest summary is logged (default a minute). */
  ingestSummaryIntervalMs?: number;
}

export interface LinkManager {
  start(): void;
  stop(): Promise<void>;
  status(): RelayStatus;
  pairing(): Pairing | null;
  /** Redeem an enrolment code; replaces any earlier pairing and reconnects with the new identity. */
  pair(relayUrl: string, code: string): Promise<Pairing>;
  /** Sign the audit head and have the relay witness it; then compare with what the relay holds. */
  checkpoint(): Promise<WitnessVerdict>;
}

const NOT_PAIRED: RelayStatus = { state: 'not_paired', offlineSince: null, backlog: null, relayUrl: null, refusedReason: null };

/** Owns the appliance's relationship with its relay: pairing, the live link, audit checkpoints. */
export function createLinkManager(deps: LinkManagerDeps): LinkManager {
  const log = deps.logger.child({ part: 'link' });
  let link: RelayLink | null = null;
  let current: RelayStatus = NOT_PAIRED;
  let checkpointTimer: NodeJS.Timeout | null = null;
  let stopped = false;
  let deviceKeyRecorded = false;
  const ingestLog = createIngestLog(deps.logger, deps.ingestSummaryIntervalMs);

  function publish(status: RelayStatus): void {
    current = status;
    if (status.state === 'connected') rememberDeviceKey();
    deps.emit('relay.stateChanged', status);
  }

  /**
   * Pairings saved before the device key was recorded get it on their first accepted login: the
   * relay just verified a signature by this very key, so it is the one the pairing belongs to.
   */
  function rememberDeviceKey(): void {
    if (deviceKeyRecorded) return;
    deviceKeyRecorded = true;
    const pairing = loadPairing(deps.db);
    if (!pairing || pairing.deviceSigningPublicKey) return;
    savePairing(deps.db, { ...pairing, deviceSigningPublicKey: deps.keys.signing.publicKeyRaw }, deps.now());
    log.info({ applianceId: pairing.applianceId }, 'recorded the device key of an older pairing');
  }

  /** One transaction for the whole batch (each delivery a savepoint inside it), then the follow-ups. */
  function commit(batch: readonly OpenedDelivery[]): void {
    if (batch.length === 0) return;
    const now = deps.now();
    const appSecrets = deps.appSecrets?.() ?? null;
    const requireMetaSignature = deps.requireMetaSignature?.() ?? false;
    const results = deps.db
      .transaction(() => {
        const applied = batch.map((d) => {
          const options = { relaySeq: d.seq, receivedAt: d.receivedAt, now, appSecrets, requireMetaSignature };
          return d.unopenable ? shelveUnopenable(deps.db, d.unopenable, options) : ingestDelivery(deps.db, d.plaintext, options);
        });
        deps.inCommit?.(applied);
        return applied;
      })
      .immediate();
    for (const result of results) {
      ingestLog.delivery(result);
      if (result.deadLettered) log.warn({ seq: result.relaySeq }, 'delivery shelved as a dead letter');
      try {
        deps.onIngested(result);
      } catch (err) {
        log.warn({ seq: result.relaySeq, err: err instanceof Error ? err.name : 'error' }, 'post-ingest work failed');
      }
    }
  }

  async function connect(pairing: Pairing): Promise<void> {
    const open = await createEnvelopeOpener({
      encryptionPrivateKey: rawX25519Private(deps.keys),
      relayPublicKey: Buffer.from(pairing.relayEncryptionPublicKey, 'base64url'),
      tenantId: pairing.tenantId,
      applianceId: pairing.applianceId,
    });
    if (stopped) return;
    link = createRelayLink({
      relayUrl: pairing.relayUrl,
      tenantId: pairing.tenantId,
      applianceId: pairing.applianceId,
      sign: (payload) => edSign(null, payload, deps.keys.signing.privateKey),
      open,
      commit,
      onStatus: publish,
      logger: deps.logger,
      now: deps.now,
    });
  }

  async function checkpoint(): Promise<WitnessVerdict> {
    const pairing = loadPairing(deps.db);
    if (!pairing || !link) throw new CodedError('NOT_PAIRED', 'This appliance is not paired with a relay yet.');
    // First what the relay already witnessed: the local log must still hold it, unchanged.
    const before = compareWithWitness(deps.db, await link.latestCheckpoint());
    if (!before.ok) return before;
    const signed = makeCheckpoint(deps.db, pairing.applianceId, deps.keys.signing.privateKey, deps.now());
    if (!signed) return before;
    try {
      await link.sendCheckpoint(signed);
    } catch (err) {
      if (err instanceof CodedError && (err.code === 'CHECKPOINT_REGRESSION' || err.code === 'CHECKPOINT_CONFLICT')) {
        return { ok: false, reason: `the relay refused the new checkpoint: ${err.message}` };
      }
      throw err;
    }
    markCheckpointWitnessed(deps.db, signed.checkpoint.seq, deps.now());
    return { ok: true, witnessedSeq: signed.checkpoint.seq };
  }

  return {
    start() {
      const pairing = loadPairing(deps.db);
      if (!pairing) {
        publish(NOT_PAIRED);
        return;
      }
      if (pairing.deviceSigningPublicKey !== undefined && pairing.deviceSigningPublicKey !== deps.keys.signing.publicKeyRaw) {
        // Logging in with other keys would only earn a 401 and teach nothing; say what happened instead.
        log.error(
          { tenantId: pairing.tenantId, applianceId: pairing.applianceId },
          'the device keys in the keychain are not the ones this pairing was made with; pair this computer again',
        );
        publish({ state: 'refused', refusedReason: 'device_keys_changed', offlineSince: deps.now(), backlog: null, relayUrl: pairing.relayUrl });
        return;
      }
      void connect(pairing).catch((err: unknown) => log.error({ code: err instanceof CodedError ? err.code : 'INTERNAL' }, 'relay link could not start'));
      checkpointTimer = setInterval(() => {
        if (current.state !== 'connected') return;
        checkpoint().then(
          (verdict) => {
            if (!verdict.ok) log.error({ reason: verdict.reason }, 'audit log disagrees with the relay witness');
          },
          (err: unknown) => log.warn({ code: err instanceof CodedError ? err.code : 'INTERNAL' }, 'audit checkpoint not witnessed'),
        );
      }, deps.checkpointIntervalMs);
      checkpointTimer.unref();
    },
    async stop() {
      stopped = true;
      ingestLog.stop();
      if (checkpointTimer) clearInterval(checkpointTimer);
      await link?.close();
      link = null;
    },
    status: () => current,
    pairing: () => loadPairing(deps.db),
    async pair(relayUrl, code) {
      const response = await enrolWithRelay({
        relayUrl,
        code,
        signingPublicKey: deps.keys.signing.publicKeyRaw,
        encryptionPublicKey: deps.keys.encryption.publicKeyRaw,
        label: 'Clinic Inbox appliance',
      });
      const pairing: Pairing = {
        relayUrl: new URL(relayUrl).toString(),
        tenantId: response.tenantId,
        applianceId: response.applianceId,
        relayEncryptionPublicKey: response.relayEncryptionPublicKey,
        phoneNumberIds: response.phoneNumberIds,
        pairedAt: deps.now(),
        deviceSigningPublicKey: deps.keys.signing.publicKeyRaw,
      };
      savePairing(deps.db, pairing, deps.now());
      log.info({ tenantId: pairing.tenantId, applianceId: pairing.applianceId }, 'paired with relay');
      await link?.close();
      link = null;
      if (checkpointTimer) clearInterval(checkpointTimer);
      stopped = false;
      this.start();
      return pairing;
    },
    checkpoint,
  };
}

/** The raw 32-byte X25519 private key (the last 32 bytes of its PKCS#8 DER), for @hpke/core. */
function rawX25519Private(keys: CoreKeys): Uint8Array {
  const der = keys.encryption.privateKey.export({ type: 'pkcs8', format: 'der' });
  return new Uint8Array(der.subarray(der.length - 32));
}
