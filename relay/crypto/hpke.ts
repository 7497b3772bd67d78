/**
 * RFC 9180 HPKE for one KEM and one KDF — DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 — and
 * AES-GCM (128 for the RFC vectors, 256 in use), Base and Auth modes, on `node:crypto` alone.
 *
 * Synchronous on purpose: the relay assigns a seq, seals and inserts in one better-sqlite3
 * transaction, so queue order equals commit order; an async library would force the seal out of
 * the transaction. ChaCha20-Poly1305 is deliberately absent (Electron's BoringSSL lacks it).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';

export type AeadName = 'aes-128-gcm' | 'aes-256-gcm';

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_IDS: Record<AeadName, number> = { 'aes-128-gcm': 0x0001, 'aes-256-gcm': 0x0002 };
const AEAD_NK: Record<AeadName, number> = { 'aes-128-gcm': 16, 'aes-256-gcm': 32 };
const NN = 12;
const NT = 16;
const NH = 32;
const NSECRET = 32;

export const MODE_BASE = 0x00;
export const MODE_AUTH = 0x02;
type Mode = typeof MODE_BASE | typeof MODE_AUTH;

const HPKE_V1 = Buffer.from('HPKE-v1');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function i2osp(n: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  let v = n;
  for (let i = len - 1; i >= 0 && v > 0; i -= 1) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  return out;
}

const KEM_SUITE_ID = Buffer.concat([Buffer.from('KEM'), i2osp(KEM_ID, 2)]);

function hmac(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** RFC 5869: an absent salt is HashLen zero bytes. */
function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return hmac(salt.length === 0 ? Buffer.alloc(NH) : salt, ikm);
}

/** RFC 5869 expand; `info` is given in pieces, fed to the HMAC as they are (no concatenation). */
function expand(prk: Uint8Array, info: readonly Uint8Array[], length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous: Buffer | null = null;
  for (let i = 1; blocks.length * NH < length; i += 1) {
    const h = createHmac('sha256', prk);
    if (previous) h.update(previous);
    for (const piece of info) h.update(piece);
    previous = h.update(COUNTER[i]!).digest();
    blocks.push(previous);
  }
  return blocks.length === 1 && length === NH ? blocks[0]! : Buffer.concat(blocks).subarray(0, length);
}
const COUNTER = Array.from({ length: 256 }, (_, i) => Buffer.from([i]));

function labeledExtract(suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return extract(salt, Buffer.concat([HPKE_V1, suiteId, Buffer.from(label), ikm]));
}

function labeledExpand(suiteId: Buffer, prk: Uint8Array, label: string, info: Uint8Array, length: number): Buffer {
  return expand(prk, [i2osp(length, 2), HPKE_V1, suiteId, Buffer.from(label), info], length);
}

export interface X25519KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Raw 32-byte public key. */
  publicRaw: Buffer;
}

// JWK rather than DER: with OpenSSL 3, DER encoding costs ~20x more per key, and the relay
// handles a fresh ephemeral key per envelope.
export function x25519PrivateFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new Error('an X25519 private key is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new Error('an X25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function x25519PublicRaw(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url');
}

export function x25519PrivateRaw(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

export function x25519KeyPairFromPrivate(privateKey: KeyObject): X25519KeyPair {
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicRaw: x25519PublicRaw(publicKey) };
}

export function generateX25519KeyPair(): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey, publicRaw: x25519PublicRaw(publicKey) };
}

/** RFC 9180 §7.1.3 DeriveKeyPair for X25519: deterministic keys from input keying material. */
export function deriveX25519KeyPair(ikm: Uint8Array): X25519KeyPair {
  const dkpPrk = labeledExtract(KEM_SUITE_ID, Buffer.alloc(0), 'dkp_prk', ikm);
  const sk = labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', Buffer.alloc(0), 32);
  return x25519KeyPairFromPrivate(x25519PrivateFromRaw(sk));
}

function dh(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const out = diffieHellman({ privateKey, publicKey });
  // RFC 7748: an all-zero output means a low-order public key; HPKE requires refusing it.
  if (out.every((b) => b === 0)) throw new Error('X25519 produced the all-zero value');
  return out;
}

function extractAndExpand(dhValue: Buffer, kemContext: Buffer): Buffer {
  const eaePrk = labeledExtract(KEM_SUITE_ID, Buffer.alloc(0), 'eae_prk', dhValue);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, NSECRET);
}

export interface KeySchedule {
  key: Buffer;
  baseNonce: Buffer;
  exporterSecret: Buffer;
  keyScheduleContext: Buffer;
  secret: Buffer;
}

function keySchedule(aead: AeadName, mode: Mode, sharedSecret: Buffer, info: Uint8Array): KeySchedule {
  const suiteId = Buffer.concat([Buffer.from('HPKE'), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_IDS[aead], 2)]);
  const empty = Buffer.alloc(0);
  const pskIdHash = labeledExtract(suiteId, empty, 'psk_id_hash', empty);
  const infoHash = labeledExtract(suiteId, empty, 'info_hash', info);
  const keyScheduleContext = Buffer.concat([Buffer.from([mode]), pskIdHash, infoHash]);
  const secret = labeledExtract(suiteId, sharedSecret, 'secret', empty);
  return {
    key: labeledExpand(suiteId, secret, 'key', keyScheduleContext, AEAD_NK[aead]),
    baseNonce: labeledExpand(suiteId, secret, 'base_nonce', keyScheduleContext, NN),
    exporterSecret: labeledExpand(suiteId, secret, 'exp', keyScheduleContext, NH),
    keyScheduleContext,
    secret,
  };
}

/** RFC 9180 §5.3 `Context.Export(exporter_context, L)` from a context's exporter secret. */
export function exportSecret(aead: AeadName, exporterSecret: Uint8Array, exporterContext: Uint8Array, length: number): Buffer {
  // Everything before the exporter context is the same for every export of a suite and length.
  const key = `${aead}/${length}`;
  let prefix = EXPORT_PREFIXES.get(key);
  if (!prefix) {
    const suiteId = Buffer.concat([Buffer.from('HPKE'), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_IDS[aead], 2)]);
    prefix = Buffer.concat([i2osp(length, 2), HPKE_V1, suiteId, Buffer.from('sec')]);
    EXPORT_PREFIXES.set(key, prefix);
  }
  return expand(exporterSecret, [prefix, exporterContext], length);
}
const EXPORT_PREFIXES = new Map<string, Buffer>();

/** One HPKE context: seals (sender) or opens (recipient) messages with a running sequence number. */
export class HpkeContext {
  private seq = 0;

  constructor(
    readonly aead: AeadName,
    readonly schedule: KeySchedule,
    readonly sharedSecret: Buffer,
  ) {}

  private nonce(): Buffer {
    const nonce = Buffer.from(this.schedule.baseNonce);
    const seqBytes = i2osp(this.seq, NN);
    for (let i = 0; i < NN; i += 1) nonce[i] = (nonce[i] ?? 0) ^ (seqBytes[i] ?? 0);
    return nonce;
  }

  private increment(): void {
    if (this.seq >= Number.MAX_SAFE_INTEGER) throw new Error('HPKE message limit reached');
    this.seq += 1;
  }

  seal(plaintext: Uint8Array, aad: Uint8Array = Buffer.alloc(0)): Buffer {
    const cipher = createCipheriv(this.aead, this.schedule.key, this.nonce(), { authTagLength: NT });
    cipher.setAAD(aad);
    const out = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    this.increment();
    return out;
  }

  open(ciphertext: Uint8Array, aad: Uint8Array = Buffer.alloc(0)): Buffer {
    if (ciphertext.length < NT) throw new Error('ciphertext shorter than the AEAD tag');
    const body = ciphertext.subarray(0, ciphertext.length - NT);
    const tag = ciphertext.subarray(ciphertext.length - NT);
    const decipher = createDecipheriv(this.aead, this.schedule.key, this.nonce(), { authTagLength: NT });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const out = Buffer.concat([decipher.update(body), decipher.final()]);
    this.increment();
    return out;
  }
}

export interface SenderSetup {
  aead: AeadName;
  recipientPublicKey: KeyObject;
  /** The same key raw, when the caller has it (saves an export per envelope). */
  recipientPublicRaw?: Buffer;
  info: Uint8Array;
  /** Auth mode: the sender's static key. Absent means Base mode. */
  senderKeyPair?: X25519KeyPair;
  /**
   * Auth mode: DH(sender static, recipient static), if the caller cached it. It is the same for
   * every envelope to one recipient, so a relay sealing many envelopes saves one X25519 each.
   */
  staticDh?: Buffer;
  /** Fixed ephemeral key for test vectors only; normally a fresh key per encapsulation. */
  ephemeralKeyPair?: X25519KeyPair;
}

export function authStaticDh(sender: X25519KeyPair, recipientPublicKey: KeyObject): Buffer {
  return dh(sender.privateKey, recipientPublicKey);
}

export function setupSender(setup: SenderSetup): { enc: Buffer; context: HpkeContext } {
  const eph = setup.ephemeralKeyPair ?? generateX25519KeyPair();
  const pkR = setup.recipientPublicRaw ?? x25519PublicRaw(setup.recipientPublicKey);
  const enc = eph.publicRaw;
  let dhValue: Buffer;
  let kemContext: Buffer;
  if (setup.senderKeyPair) {
    const staticDh = setup.staticDh ?? dh(setup.senderKeyPair.privateKey, setup.recipientPublicKey);
    dhValue = Buffer.concat([dh(eph.privateKey, setup.recipientPublicKey), staticDh]);
    kemContext = Buffer.concat([enc, pkR, setup.senderKeyPair.publicRaw]);
  } else {
    dhValue = dh(eph.privateKey, setup.recipientPublicKey);
    kemContext = Buffer.concat([enc, pkR]);
  }
  const sharedSecret = extractAndExpand(dhValue, kemContext);
  const mode = setup.senderKeyPair ? MODE_AUTH : MODE_BASE;
  return { enc, context: new HpkeContext(setup.aead, keySchedule(setup.aead, mode, sharedSecret, setup.info), sharedSecret) };
}

export interface RecipientSetup {
  aead: AeadName;
  recipientKeyPair: X25519KeyPair;
  enc: Uint8Array;
  info: Uint8Array;
  /** Auth mode: the sender's static public key the recipient pinned. Absent means Base mode. */
  senderPublicKey?: KeyObject;
}

export function setupRecipient(setup: RecipientSetup): HpkeContext {
  const pkE = x25519PublicFromRaw(setup.enc);
  const pkR = setup.recipientKeyPair.publicRaw;
  let dhValue: Buffer;
  let kemContext: Buffer;
  if (setup.senderPublicKey) {
    dhValue = Buffer.concat([dh(setup.recipientKeyPair.privateKey, pkE), dh(setup.recipientKeyPair.privateKey, setup.senderPublicKey)]);
    kemContext = Buffer.concat([Buffer.from(setup.enc), pkR, x25519PublicRaw(setup.senderPublicKey)]);
  } else {
    dhValue = dh(setup.recipientKeyPair.privateKey, pkE);
    kemContext = Buffer.concat([Buffer.from(setup.enc), pkR]);
  }
  const sharedSecret = extractAndExpand(dhValue, kemContext);
  const mode = setup.senderPublicKey ? MODE_AUTH : MODE_BASE;
  return new HpkeContext(setup.aead, keySchedule(setup.aead, mode, sharedSecret, setup.info), sharedSecret);
}

/**
 * The first (and, single-shot, only) seal of a context whose key schedule was computed earlier —
 * possibly on another thread. Lets the costly encapsulation run apart from the AEAD step that
 * binds the associated data.
 */
export function sealFirst(aead: AeadName, key: Uint8Array, baseNonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, prefix?: Uint8Array): Buffer {
  // Sequence number 0: the nonce is the base nonce itself. `prefix` (a nonce sent in front, say)
  // goes into the same buffer as the ciphertext, not into a copy of it.
  const cipher = createCipheriv(aead, key, baseNonce, { authTagLength: NT });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat(prefix ? [prefix, body, final, cipher.getAuthTag()] : [body, final, cipher.getAuthTag()]);
}

/** Single-shot Auth-mode seal with AES-256-GCM: one fresh encapsulation, one message. */
export function sealAuth(args: {
  recipientPublicKey: KeyObject;
  recipientPublicRaw?: Buffer;
  sender: X25519KeyPair;
  info: Uint8Array;
  aad: Uint8Array;
  plaintext: Uint8Array;
}): { enc: Buffer; ct: Buffer } {
  const { enc, context } = setupSender({
    aead: 'aes-256-gcm',
    recipientPublicKey: args.recipientPublicKey,
    ...(args.recipientPublicRaw ? { recipientPublicRaw: args.recipientPublicRaw } : {}),
    senderKeyPair: args.sender,
    info: args.info,
  });
  return { enc, ct: context.seal(args.plaintext, args.aad) };
}

export function openAuth(args: {
  recipient: X25519KeyPair;
  senderPublicKey: KeyObject;
  enc: Uint8Array;
  info: Uint8Array;
  aad: Uint8Array;
  ct: Uint8Array;
}): Buffer {
  const context = setupRecipient({
    aead: 'aes-256-gcm',
    recipientKeyPair: args.recipient,
    enc: args.enc,
    info: args.info,
    senderPublicKey: args.senderPublicKey,
  });
  return context.open(args.ct, args.aad);
}
