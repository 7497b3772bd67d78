/**
 * A minimal appliance for relay tests and the bench: the relay side of the contract seen from the
 * clinic, with no storage of its own.
 *
 *   const a = TestAppliance.create();
 *   await a.enrol(relay.url, code);                 // POST /v1/enrol, pins the relay's key
 *   await a.connect(relay.wsUrl);                    // signed upgrade; resolves on `welcome`
 *   await a.waitForDeliveries(3);                    // opened envelopes in a.deliveries
 *   a.close();
 *
 * `a.twin()` is a second computer with the same keys (the conflict hold-off's case).
 * Options: `connect(url, {autoAck: false})` to ack by hand (`a.ack(seq)`); `upgradeHeaders({...})`
 * builds (optionally broken) auth headers for refusal tests; `a.frames` keeps every frame received.
 * Every envelope is opened with the relay's HPKE and its AAD binding (tenant, appliance, seq,
 * receivedAt); an envelope that does not open is counted in `openFailures` and never acked.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { WebSocket } from 'ws';
import { ENROL_PATH, EnrolResponseSchema, type EnrolResponse } from '../../shared/enrolment';
import { createDecipheriv } from 'node:crypto';
import {
  ENVELOPE_INFO,
  ENVELOPE_V2_NONCE_BYTES,
  envelopeAad,
  envelopeV2ExporterContext,
  envelopeV2Info,
  EnvelopePlaintextSchema,
  type Envelope,
  type EnvelopePlaintext,
} from '../../shared/envelope';
import {
  APPLIANCE_WS_PATH,
  checkpointPayload,
  ENVELOPE_VERSIONS_HEADER,
  RelayFrameSchema,
  WS_AUTH_HEADERS,
  wsAuthPayload,
  type Checkpoint,
  type RelayFrame,
} from '../../shared/wire';
import { exportSecret, generateX25519KeyPair, openAuth, setupRecipient, x25519PublicFromRaw, type X25519KeyPair } from '../crypto/hpke';

export interface Delivery {
  seq: number;
  receivedAt: number;
  plaintext: EnvelopePlaintext;
  /** The webhook body as text (decoded from base64url for kind `meta`). */
  body: string;
  openedAt: number;
}

export class TestAppliance {
  readonly deliveries: Delivery[] = [];
  readonly frames: RelayFrame[] = [];
  openFailures = 0;
  enrolment: EnrolResponse | null = null;
  ws: WebSocket | null = null;
  closed: Promise<{ code: number; reason: string }> | null = null;
  private autoAck = true;
  private waiters: (() => void)[] = [];
  private relayKey: KeyObject | null = null;

  private constructor(
    readonly signing: { privateKey: KeyObject; publicKey: KeyObject },
    readonly encryption: X25519KeyPair,
  ) {}

  static create(): TestAppliance {
    return new TestAppliance(generateKeyPairSync('ed25519'), generateX25519KeyPair());
  }

  get signingPublicKey(): string {
    return this.signing.publicKey.export({ format: 'jwk' }).x!;
  }

  get encryptionPublicKey(): string {
    return this.encryption.publicRaw.toString('base64url');
  }

  get applianceId(): string {
    if (!this.enrolment) throw new Error('not enrolled');
    return this.enrolment.applianceId;
  }

  async enrol(relayUrl: string, code: string, label = 'Test desk'): Promise<EnrolResponse> {
    const post = () =>
      fetch(new URL(ENROL_PATH, relayUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code, signingPublicKey: this.signingPublicKey, encryptionPublicKey: this.encryptionPublicKey, label }),
      });
    // A test that blocked its event loop (a synchronous CLI run) past the relay's keep-alive
    // timeout finds its pooled socket closed under it: the request never reached the relay, so
    // sending it once more on a fresh connection is safe.
    const res = await post().catch((err: Error & { cause?: { code?: string } }) => {
      if (err.cause?.code === 'UND_ERR_SOCKET') return post();
      throw err;
    });
    const json: unknown = await res.json();
    if (res.status !== 200) throw Object.assign(new Error(`enrolment refused: ${res.status} ${JSON.stringify(json)}`), { status: res.status, body: json });
    this.enrolment = EnrolResponseSchema.parse(json);
    this.relayKey = x25519PublicFromRaw(Buffer.from(this.enrolment.relayEncryptionPublicKey, 'base64url'));
    return this.enrolment;
  }

  /**
   * A second computer holding this appliance's keys and enrolment (a data folder restored
   * elsewhere): same identity, its own socket and deliveries.
   */
  twin(): TestAppliance {
    const twin = new TestAppliance(this.signing, this.encryption);
    if (this.enrolment) twin.adoptEnrolment(this.enrolment);
    return twin;
  }

  /** Takes an enrolment made elsewhere (the bench enrols thousands straight through the store). */
  adoptEnrolment(enrolment: EnrolResponse): void {
    this.enrolment = EnrolResponseSchema.parse(enrolment);
    this.relayKey = x25519PublicFromRaw(Buffer.from(enrolment.relayEncryptionPublicKey, 'base64url'));
  }

  upgradeHeaders(opts: { applianceId?: string; timestamp?: number; nonce?: string; signer?: KeyObject } = {}): Record<string, string> {
    const applianceId = opts.applianceId ?? this.applianceId;
    const timestamp = opts.timestamp ?? Date.now();
    const nonce = opts.nonce ?? randomBytes(16).toString('base64url');
    const signature = sign(null, Buffer.from(wsAuthPayload(applianceId, timestamp, nonce)), opts.signer ?? this.signing.privateKey);
    return {
      [WS_AUTH_HEADERS.applianceId]: applianceId,
      [WS_AUTH_HEADERS.timestamp]: String(timestamp),
      [WS_AUTH_HEADERS.nonce]: nonce,
      [WS_AUTH_HEADERS.signature]: signature.toString('base64url'),
    };
  }

  /** Envelope versions seen, per delivery: what the relay sealed. */
  readonly versions: number[] = [];
  /** Epoch contexts opened (v2), by epoch id and enc: each is set up once. */
  readonly epochSecrets = new Map<string, Buffer>();

  /**
   * Opens the socket; resolves on `welcome`, rejects with `{status}` if the upgrade is refused.
   * `envelopeV2` announces envelope v2 (as the real core does); without it the relay seals v1.
   */
  connect(
    wsBaseUrl: string,
    opts: { autoAck?: boolean; headers?: Record<string, string>; envelopeV2?: boolean } = {},
  ): Promise<RelayFrame & { type: 'welcome' }> {
    this.autoAck = opts.autoAck ?? true;
    const headers = { ...(opts.headers ?? this.upgradeHeaders()), ...(opts.envelopeV2 ? { [ENVELOPE_VERSIONS_HEADER]: '1,2' } : {}) };
    const ws = new WebSocket(new URL(APPLIANCE_WS_PATH, wsBaseUrl), { headers, perMessageDeflate: false });
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    return new Promise((resolve, reject) => {
      ws.on('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        ws.terminate();
      });
      ws.on('error', reject);
      ws.on('message', (data) => {
        const frame = RelayFrameSchema.parse(JSON.parse(data.toString()));
        this.frames.push(frame);
        if (frame.type === 'welcome') resolve(frame);
        if (frame.type === 'deliver') this.onDeliver(frame);
        this.wake();
      });
    });
  }

  /** Opens one envelope of either version with the relay's own HPKE (the real core uses @hpke/core). */
  open(seq: number, envelope: Envelope): Buffer {
    if (!this.enrolment || !this.relayKey) throw new Error('not enrolled');
    const { tenantId, applianceId } = this.enrolment;
    const aad = Buffer.from(envelopeAad({ tenantId, applianceId, seq, receivedAt: envelope.receivedAt }));
    const ct = Buffer.from(envelope.ct, 'base64url');
    if (envelope.v === 1) {
      return openAuth({ recipient: this.encryption, senderPublicKey: this.relayKey, enc: Buffer.from(envelope.enc, 'base64url'), info: Buffer.from(ENVELOPE_INFO), aad, ct });
    }
    const cacheKey = `${envelope.epoch}.${envelope.enc}`;
    let secret = this.epochSecrets.get(cacheKey);
    if (!secret) {
      const ctx = setupRecipient({
        aead: 'aes-256-gcm',
        recipientKeyPair: this.encryption,
        enc: Buffer.from(envelope.enc, 'base64url'),
        info: Buffer.from(envelopeV2Info({ tenantId, applianceId, epoch: envelope.epoch })),
        senderPublicKey: this.relayKey,
      });
      secret = ctx.schedule.exporterSecret;
      this.epochSecrets.set(cacheKey, secret);
    }
    const key = exportSecret('aes-256-gcm', secret, envelopeV2ExporterContext(seq), 32);
    const nonce = ct.subarray(0, ENVELOPE_V2_NONCE_BYTES);
    const body = ct.subarray(ENVELOPE_V2_NONCE_BYTES, ct.length - 16);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAAD(aad);
    decipher.setAuthTag(ct.subarray(ct.length - 16));
    return Buffer.concat([decipher.update(body), decipher.final()]);
  }

  private onDeliver(frame: RelayFrame & { type: 'deliver' }): void {
    if (!this.enrolment || !this.relayKey) throw new Error('not enrolled');
    try {
      const pt = this.open(frame.seq, frame.envelope);
      this.versions.push(frame.envelope.v);
      const plaintext = EnvelopePlaintextSchema.parse(JSON.parse(pt.toString('utf8')));
      const body = plaintext.kind === 'meta' ? Buffer.from(plaintext.body, 'base64url').toString('utf8') : plaintext.body;
      this.deliveries.push({ seq: frame.seq, receivedAt: frame.envelope.receivedAt, plaintext, body, openedAt: Date.now() });
      if (this.autoAck) this.ack(frame.seq);
    } catch {
      this.openFailures += 1;
    }
  }

  ack(seq: number): void {
    this.send({ type: 'ack', seq });
  }

  send(frame: unknown): void {
    this.ws?.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  signCheckpoint(checkpoint: Checkpoint, signer: KeyObject = this.signing.privateKey): { checkpoint: Checkpoint; signature: string } {
    const signature = sign(null, Buffer.from(checkpointPayload(this.applianceId, checkpoint)), signer).toString('base64url');
    return { checkpoint, signature };
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `predicate()` holds, re-checking on every frame. */
  async waitUntil(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  waitForDeliveries(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.deliveries.length >= n, timeoutMs, `${n} deliveries (have ${this.deliveries.length})`);
  }

  /** The next frame of a type after the ones already seen. */
  async nextFrame<T extends RelayFrame['type']>(type: T, timeoutMs = 5_000): Promise<RelayFrame & { type: T }> {
    const start = this.frames.length;
    let found: RelayFrame | undefined;
    await this.waitUntil(() => (found = this.frames.slice(start).find((f) => f.type === type)) !== undefined, timeoutMs, `a ${type} frame`);
    return found as RelayFrame & { type: T };
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }
}
