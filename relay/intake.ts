/**
 * Webhook intake: Meta's signature, routing every change of a batch to its tenant, keyed
 * duplicate detection, and the group committer that seals and durably queues envelopes.
 */
import { createHmac, hash, randomBytes, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  ENVELOPE_INFO,
  ENVELOPE_V2_NONCE_BYTES,
  envelopeAad,
  envelopeV2ExporterContext,
  envelopeV2Info,
  EPOCH_MAX_AGE_MS,
  EPOCH_MAX_ENVELOPES,
  type EnvelopePlaintext,
} from '../shared/envelope';
import { isRoutableWebhook, type RoutableWebhook } from '../shared/whatsapp/routing';
import { authStaticDh, exportSecret, sealFirst, setupSender, x25519PublicFromRaw, type X25519KeyPair } from './crypto/hpke';
import { x25519PublicKeyProblem } from './crypto/keyCheck';
import { activeApplianceOf, dedupRemember, dedupSeen, insertEnvelope, setNextSeq, type ApplianceRow, type Db } from './store';

const SIGNATURE_RE = /^sha256=([0-9a-f]{64})$/;

/**
 * Checks `X-Hub-Signature-256` against every active app secret (rotation), in constant time per
 * comparison. The HMAC runs over the exact bytes received, never a re-serialisation.
 */
export function verifyMetaSignature(appSecrets: readonly string[], rawBody: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const m = SIGNATURE_RE.exec(header.trim().toLowerCase());
  if (!m) return false;
  const given = Buffer.from(m[1]!, 'hex');
  let ok = false;
  for (const secret of appSecrets) {
    const expected = createHmac('sha256', secret).update(rawBody).digest();
    // No early exit: every secret is tried, so timing does not reveal which one matched.
    if (timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}

export function signMetaBody(appSecret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

type Entry = RoutableWebhook['entry'][number];
type Change = Entry['changes'][number];

/**
 * An HPKE encapsulation prepared ahead for one appliance; only the AEAD step, which binds the seq,
 * must happen inside the commit transaction. v1: one fresh encapsulation (ephemeral key, both DHs,
 * key schedule) per envelope. v2: the appliance's current epoch context, whose exporter gives the
 * envelope's key from its seq.
 */
export type Encapsulation =
  | { v: 1; applianceId: string; enc: Uint8Array; key: Uint8Array; baseNonce: Uint8Array }
  | { v: 2; applianceId: string; epoch: string; enc: Uint8Array; exporterSecret: Uint8Array };

export interface TenantPart {
  tenantId: string;
  kind: EnvelopePlaintext['kind'];
  /**
   * The envelope plaintext exactly as sealed: the UTF-8 JSON text of an `EnvelopePlaintext`, built
   * once on the main thread. Its own ArrayBuffer (never a slice of Node's pool), so it moves to the
   * writer thread without a copy.
   */
  plaintext: Uint8Array;
  encapsulation?: Encapsulation;
  /** Digests of the items (each message, each status, or the change itself) before keying. */
  items: string[];
  changes: number;
}

export interface RoutedWebhook {
  parts: TenantPart[];
  unknownPhoneNumber: number;
  noPhoneNumber: number;
}

/** Meta's webhooks nest about eight deep; this leaves room for new shapes and none for abuse. */
export const MAX_NESTING_DEPTH = 64;

/**
 * True when brackets nest deeper than `limit` anywhere outside strings. One pass over the bytes,
 * before anything parses or walks the body: parsing, validation, serialisation and the dedup
 * digests all recurse, and a signed body nested a million deep must not reach them.
 */
export function nestingDepthExceeds(raw: Uint8Array, limit = MAX_NESTING_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw[i]!;
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: the next byte is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth -= 1;
  }
  return false;
}

export function parseWebhook(rawBody: Buffer): RoutableWebhook | null {
  let json: unknown;
  try {
    json = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return null;
  }
  return isRoutableWebhook(json) ? json : null;
}

const META_PREFIX = '{"kind":"meta","body":"';
const META_MIDDLE = '","signature":"';
const META_SUFFIX = '"}';

/**
 * The bytes of `JSON.stringify({kind: 'meta', body: base64url(raw), signature})`, written straight
 * into one buffer: base64url and a hex signature are never escaped by JSON, so the text is the
 * pieces side by side, and a multi-megabyte body is not copied through a JSON string first.
 */
export function metaPlaintext(rawBody: Buffer, signature: string): Uint8Array {
  const body = rawBody.toString('base64url');
  const out = Buffer.from(new ArrayBuffer(META_PREFIX.length + body.length + META_MIDDLE.length + signature.length + META_SUFFIX.length));
  let at = out.write(META_PREFIX, 0, 'latin1');
  at += out.write(body, at, 'latin1');
  at += out.write(META_MIDDLE, at, 'latin1');
  at += out.write(signature, at, 'latin1');
  out.write(META_SUFFIX, at, 'latin1');
  return new Uint8Array(out.buffer);
}

/** The bytes of a `relay` plaintext (a re-serialised part), in a buffer of their own. */
export function relayPlaintext(body: string): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ kind: 'relay', body } satisfies EnvelopePlaintext)));
}

/**
 * JSON with object keys sorted at every level: the same item serialises the same way whatever
 * order Meta's serialiser chose. Depth is bounded before routing (`nestingDepthExceeds`).
 */
export function canonicalJson(value: unknown): string {
  // Most strings in a webhook need no escaping, and then JSON's text is the string in quotes.
  if (typeof value === 'string') return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  // Plain loops, concatenation and cached quoted keys: this runs for every item of every webhook,
  // and so written it costs about what JSON.stringify does.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) {
      if (i) out += ',';
      out += canonicalJson(value[i]);
    }
    return `${out}]`;
  }
  const o = value as Record<string, unknown>;
  const keys = sortedKeys(o);
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (!first) out += ',';
    out += quotedKey(k) + canonicalJson(v);
    first = false;
  }
  return `${out}}`;
}
/** Meta's field names repeat in every webhook; bounded, since keys in a body are the sender's choice. */
const QUOTED_KEYS = new Map<string, string>();

/**
 * What `JSON.stringify` escapes in a string: quote, backslash, control characters and lone
 * surrogates (any surrogate here, so a string with an emoji takes the slow path, never a wrong one).
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `Object.keys(o).sort()`, without the sort when the keys already come in order (compared the same way). */
function sortedKeys(o: object): string[] {
  const keys = Object.keys(o);
  for (let i = 1; i < keys.length; i += 1) if (keys[i - 1]! > keys[i]!) return keys.sort();
  return keys;
}

// One-shot `hash`: a Hash object per item (construct, update, digest) cost twice as much.
const digest = (kind: string, canonical: string) => `${kind}\0${hash('sha256', canonical, 'base64url')}`;

/** `JSON.stringify(key) + ':'`, remembered for the few keys that recur in every webhook. */
function quotedKey(k: string): string {
  let quoted = QUOTED_KEYS.get(k);
  if (quoted === undefined) {
    quoted = `${JSON.stringify(k)}:`;
    if (QUOTED_KEYS.size < 10_000) QUOTED_KEYS.set(k, quoted);
  }
  return quoted;
}

/** `canonicalJson` of the object without the keys in `omit` (what the rest of a destructuring would hold). */
function canonicalJsonOmitting(o: Record<string, unknown>, omit: ReadonlySet<string>): string {
  let out = '{';
  let first = true;
  for (const k of sortedKeys(o)) {
    const v = o[k];
    if (v === undefined || omit.has(k)) continue;
    if (!first) out += ',';
    out += quotedKey(k) + canonicalJson(v);
    first = false;
  }
  return `${out}}`;
}
const ITEM_LISTS = new Set(['messages', 'statuses', 'contacts']);

/**
 * What makes one item recognisable when Meta sends it again: the whole item (a message or a
 * status object) with its context (the change's field and metadata, and the contacts it names),
 * never only its id. Meta reuses a message id for a reaction that is changed or removed, and a
 * status id for each of sent/delivered/read: those are new items, a retry is the same item.
 * Only a digest travels to the writer thread, which keys it with the relay's dedup secret.
 *
 * The digested text is `canonicalJson({ contacts, context, field, message | status })`, written
 * out piece by piece (the keys in sorted order) so the change's context is serialised once for all
 * its items and no wrapper objects are built; the digests, and so the stored dedup keys, are the
 * same as before (checked against that formula in intake.test.ts).
 */
function itemsOf(change: Change): string[] {
  const value = change.value as Record<string, unknown>;
  const { messages, statuses, contacts } = value;
  const contactsFor = (waId: unknown): string => {
    if (!Array.isArray(contacts)) return '[]';
    const named = (contacts as { wa_id?: unknown }[]).filter((c) => c?.wa_id === waId);
    return canonicalJson(named.length > 0 ? named : contacts);
  };
  const hasItems = (Array.isArray(messages) && messages.length > 0) || (Array.isArray(statuses) && statuses.length > 0);
  if (!hasItems) {
    // A change with neither (template or account updates, unknown kinds) is recognised by its content.
    return [digest('c', `{"field":${JSON.stringify(change.field)},"value":${canonicalJson(value)}}`)];
  }
  const shared = `,"context":${canonicalJsonOmitting(value, ITEM_LISTS)},"field":${JSON.stringify(change.field)},`;
  const items: string[] = [];
  if (Array.isArray(messages)) {
    for (const m of messages as { from?: unknown }[]) items.push(digest('m', `{"contacts":${contactsFor(m?.from)}${shared}"message":${canonicalJson(m)}}`));
  }
  if (Array.isArray(statuses)) {
    for (const st of statuses as { recipient_id?: unknown }[]) items.push(digest('s', `{"contacts":${contactsFor(st?.recipient_id)}${shared}"status":${canonicalJson(st)}}`));
  }
  return items;
}

/** Every `phone_number_id` a webhook names, once each: looked up in one query before routing. */
export function phoneNumberIdsOf(body: RoutableWebhook): string[] {
  const ids = new Set<string>();
  for (const entry of body.entry) for (const change of entry.changes) if (change.value.metadata?.phone_number_id) ids.add(change.value.metadata.phone_number_id);
  return [...ids];
}

/**
 * Routes every change of every entry by its `phone_number_id`. When the whole body belongs to one
 * tenant it travels as Meta sent it (kind `meta`, so the appliance can check Meta's HMAC); as soon
 * as anything in it belongs elsewhere (another tenant, an unknown number), each tenant gets only
 * its own changes, re-serialised (kind `relay`).
 */
export function routeWebhook(
  rawBody: Buffer,
  signature: string,
  body: RoutableWebhook,
  tenantOf: (phoneNumberId: string) => string | undefined,
): RoutedWebhook {
  const byTenant = new Map<string, { entries: Map<number, Entry>; items: string[]; changes: number }>();
  let unknownPhoneNumber = 0;
  let noPhoneNumber = 0;
  let routedChanges = 0;
  let totalChanges = 0;
  body.entry.forEach((entry, entryIndex) => {
    for (const change of entry.changes) {
      totalChanges += 1;
      const phoneNumberId = change.value.metadata?.phone_number_id;
      if (!phoneNumberId) {
        noPhoneNumber += 1;
        continue;
      }
      const tenantId = tenantOf(phoneNumberId);
      if (!tenantId) {
        unknownPhoneNumber += 1;
        continue;
      }
      routedChanges += 1;
      let part = byTenant.get(tenantId);
      if (!part) {
        part = { entries: new Map(), items: [], changes: 0 };
        byTenant.set(tenantId, part);
      }
      let own = part.entries.get(entryIndex);
      if (!own) {
        own = { ...entry, changes: [] };
        part.entries.set(entryIndex, own);
      }
      own.changes.push(change);
      part.items.push(...itemsOf(change));
      part.changes += 1;
    }
  });
  const whole = byTenant.size === 1 && routedChanges === totalChanges;
  const parts: TenantPart[] = [];
  for (const [tenantId, part] of byTenant) {
    parts.push({
      tenantId,
      kind: whole ? 'meta' : 'relay',
      plaintext: whole ? metaPlaintext(rawBody, signature.trim().toLowerCase()) : relayPlaintext(JSON.stringify({ ...body, entry: [...part.entries.values()] })),
      items: part.items,
      changes: part.changes,
    });
  }
  return { parts, unknownPhoneNumber, noPhoneNumber };
}

export type PartOutcome =
  /** `version`: the envelope version it was sealed with. */
  | { tenantId: string; outcome: 'queued'; applianceId: string; seq: number; version: 1 | 2 }
  | { tenantId: string; outcome: 'duplicate' }
  | { tenantId: string; outcome: 'no_appliance' }
  /** The appliance's key cannot be sealed to (small-order, say): only this tenant's part waits. */
  | { tenantId: string; outcome: 'unsealable'; applianceId: string };

/** Thrown when a tenant's appliance key cannot be used; names the appliance, never the key. */
export class UnsealableRecipient extends Error {
  constructor(
    readonly applianceId: string,
    problem: string,
  ) {
    super(`the encryption key of appliance ${applianceId} ${problem}`);
  }
}

/** The part of an appliance row sealing needs. */
export interface Recipient {
  id: string;
  tenant_id: string;
  encryption_public_key: Uint8Array;
  /** 2 once the appliance announced envelope v2; 1 otherwise. */
  envelope_version?: number;
}

interface Epoch {
  id: string;
  enc: Uint8Array;
  exporterSecret: Uint8Array;
  startedAt: number;
  used: number;
}

/**
 * Prepares encapsulations to appliances (pure CPU; safe on any thread). Per appliance id (its keys
 * never change; re-pairing makes a new id) it keeps the parsed key and the static-static DH of
 * Auth mode, which is the same for every envelope to that appliance.
 */
export function createRecipients(relayKeyPair: X25519KeyPair, now: () => number = Date.now): (appliance: Recipient) => Encapsulation {
  const info = Buffer.from(ENVELOPE_INFO);
  const recipients = new Map<string, { key: KeyObject; raw: Buffer; staticDh: Buffer }>();
  const epochs = new Map<string, Epoch>();
  return (appliance) => {
    let recipient = recipients.get(appliance.id);
    if (!recipient) {
      // Keys are checked at enrolment and at start; this catches one written by anything else.
      const problem = x25519PublicKeyProblem(appliance.encryption_public_key);
      if (problem) throw new UnsealableRecipient(appliance.id, problem);
      const key = x25519PublicFromRaw(appliance.encryption_public_key);
      recipient = { key, raw: Buffer.from(appliance.encryption_public_key), staticDh: authStaticDh(relayKeyPair, key) };
      if (recipients.size > 50_000) recipients.clear();
      recipients.set(appliance.id, recipient);
    }
    if (appliance.envelope_version === 2) {
      const t = now();
      let epoch = epochs.get(appliance.id);
      if (!epoch || epoch.used >= EPOCH_MAX_ENVELOPES || t - epoch.startedAt >= EPOCH_MAX_AGE_MS) {
        const id = randomBytes(16).toString('base64url');
        const setup = setupSender({
          aead: 'aes-256-gcm',
          recipientPublicKey: recipient.key,
          recipientPublicRaw: recipient.raw,
          senderKeyPair: relayKeyPair,
          staticDh: recipient.staticDh,
          info: Buffer.from(envelopeV2Info({ tenantId: appliance.tenant_id, applianceId: appliance.id, epoch: id })),
        });
        epoch = { id, enc: new Uint8Array(setup.enc), exporterSecret: new Uint8Array(setup.context.schedule.exporterSecret), startedAt: t, used: 0 };
        if (epochs.size > 50_000) epochs.clear();
        epochs.set(appliance.id, epoch);
      }
      epoch.used += 1;
      return { v: 2, applianceId: appliance.id, epoch: epoch.id, enc: epoch.enc, exporterSecret: epoch.exporterSecret };
    }
    const { enc, context } = setupSender({
      aead: 'aes-256-gcm',
      recipientPublicKey: recipient.key,
      recipientPublicRaw: recipient.raw,
      senderKeyPair: relayKeyPair,
      staticDh: recipient.staticDh,
      info,
    });
    // Exact-size copies: a Buffer from Node's pool would carry its whole 8 KiB slab across threads.
    return {
      v: 1,
      applianceId: appliance.id,
      enc: new Uint8Array(enc),
      key: new Uint8Array(context.schedule.key),
      baseNonce: new Uint8Array(context.schedule.baseNonce),
    };
  };
}

/**
 * Prepares v1 encapsulations (the costly half of HPKE) on the main thread, in parallel with the
 * writer thread's commits. A tenant whose appliance was last sealed to with v2 is skipped: an epoch
 * lookup costs the writer less than this thread's appliance query.
 */
export function createEncapsulator(deps: { db: Db; relayKeyPair: X25519KeyPair }) {
  const prepare = createRecipients(deps.relayKeyPair);
  const v2Tenants = new Set<string>();
  return {
    prepare(tenantId: string): Encapsulation | undefined {
      if (v2Tenants.has(tenantId)) return undefined;
      const appliance = activeApplianceOf(deps.db, tenantId);
      return appliance && appliance.envelope_version !== 2 ? prepare(appliance) : undefined;
    },
    /** What the writer reported: which envelope version each tenant's appliance now gets. */
    learn(outcomes: PartOutcome[]): void {
      for (const o of outcomes) {
        if (o.outcome !== 'queued') continue;
        if (o.version === 1) v2Tenants.delete(o.tenantId);
        else if (v2Tenants.size < 100_000) v2Tenants.add(o.tenantId);
      }
    },
  };
}

/** The dedup key of one item of a tenant: an HMAC under the relay's dedup secret. */
export function createDedupHasher(dedupKey: Uint8Array): (tenantId: string, item: string) => Buffer {
  return (tenantId, item) => createHmac('sha256', dedupKey).update(`${tenantId}\0${item}`).digest();
}

/**
 * v2 nonces from one CSPRNG draw per 341 envelopes: each 12 bytes is used once, and a fresh
 * `randomBytes` call per envelope cost more than the AEAD itself.
 */
let noncePool = Buffer.alloc(0);
let noncePoolAt = 0;
function randomNonce(): Buffer {
  if (noncePoolAt + ENVELOPE_V2_NONCE_BYTES > noncePool.length) {
    noncePool = randomFillSync(Buffer.allocUnsafeSlow(ENVELOPE_V2_NONCE_BYTES * 341));
    noncePoolAt = 0;
  }
  const nonce = noncePool.subarray(noncePoolAt, noncePoolAt + ENVELOPE_V2_NONCE_BYTES);
  noncePoolAt += ENVELOPE_V2_NONCE_BYTES;
  return nonce;
}

/** The AEAD step that binds tenant, appliance, seq and receive time; what the queue row keeps. */
export function sealPart(e: Encapsulation, part: TenantPart, seq: number, receivedAt: number): { enc: Buffer; ct: Buffer; epoch: string | null } {
  const aad = Buffer.from(envelopeAad({ tenantId: part.tenantId, applianceId: e.applianceId, seq, receivedAt }));
  if (e.v === 1) return { enc: Buffer.from(e.enc), ct: sealFirst('aes-256-gcm', e.key, e.baseNonce, part.plaintext, aad), epoch: null };
  const key = exportSecret('aes-256-gcm', e.exporterSecret, envelopeV2ExporterContext(seq), 32);
  const nonce = randomNonce();
  return { enc: Buffer.from(e.enc), ct: sealFirst('aes-256-gcm', key, nonce, part.plaintext, aad, nonce), epoch: e.epoch };
}

/**
 * Seals one webhook's tenant parts and queues them; runs inside the queue writer's transaction,
 * so seq assignment, the AEAD seal that binds the seq, and the insert commit together: seq order is
 * commit order. An encapsulation prepared ahead is used only if it was made for the tenant's
 * appliance as it is now (a re-pairing in between means sealing afresh).
 *
 * The writer is the only connection that takes seqs, so between transactions it keeps each
 * tenant's appliance row and next seq in memory and writes `next_seq` once per appliance per
 * transaction. `begin()` drops that memory whenever another connection (the main thread's
 * enrolments and revocations, an operator command) committed since: SQLite's `data_version`
 * says so exactly, read under the write lock.
 */
export function createSealer(deps: { db: Db; relayKeyPair: X25519KeyPair; dedupKey: Buffer }) {
  const { db } = deps;
  const prepare = createRecipients(deps.relayKeyPair);
  const dedupHash = createDedupHasher(deps.dedupKey);
  const appliances = new Map<string, { row: ApplianceRow; nextSeq: number; taken: boolean } | null>();
  let dataVersion = -1;

  const applianceOf = (tenantId: string) => {
    let a = appliances.get(tenantId);
    if (a === undefined) {
      const row = activeApplianceOf(db, tenantId);
      a = row ? { row, nextSeq: row.next_seq, taken: false } : null;
      if (appliances.size > 10_000) flushSeqs(true);
      appliances.set(tenantId, a);
    }
    return a;
  };
  /** Writes the seqs taken in this transaction; `forget` also drops the remembered rows. */
  const flushSeqs = (forget = false) => {
    for (const a of appliances.values()) {
      if (a?.taken) {
        setNextSeq(db, a.row.id, a.nextSeq);
        a.taken = false;
      }
    }
    if (forget) appliances.clear();
  };

  return {
    /** First thing in each transaction; true when another connection committed since the last one. */
    begin(): boolean {
      const v = db.pragma('data_version', { simple: true }) as number;
      const changed = v !== dataVersion;
      if (changed) appliances.clear();
      dataVersion = v;
      return changed;
    },
    /** Last thing in each transaction. */
    finish: () => flushSeqs(),
    /** After this connection changed appliance rows itself (an envelope version), inside the transaction. */
    changed: () => flushSeqs(true),
    /** After a transaction rolled back: nothing remembered from it holds. */
    reset: () => {
      appliances.clear();
      dataVersion = -1;
    },
    seal: (parts: TenantPart[], receivedAt: number): PartOutcome[] =>
      parts.map((part): PartOutcome => {
        const keys = part.items.map((i) => dedupHash(part.tenantId, i));
        const duplicate = { tenantId: part.tenantId, outcome: 'duplicate' } as const;
        // A part that cannot be queued writes nothing, not even its keys, so Meta's retry queues it.
        const seenBefore = () => keys.every((k) => dedupSeen(db, k));
        const appliance = applianceOf(part.tenantId);
        if (!appliance) return seenBefore() ? duplicate : { tenantId: part.tenantId, outcome: 'no_appliance' };
        const { row } = appliance;
        const version = row.envelope_version === 2 ? 2 : 1;
        let e: Encapsulation;
        try {
          e = part.encapsulation?.applianceId === row.id && part.encapsulation.v === version ? part.encapsulation : prepare(row);
        } catch {
          // Nothing of this part was written; the other parts of the webhook commit as usual.
          return seenBefore() ? duplicate : { tenantId: part.tenantId, outcome: 'unsealable', applianceId: row.id };
        }
        // Storing the keys is the duplicate check (one statement per item instead of a lookup and
        // an insert): a part none of whose items is new leaves every key as it was and queues nothing.
        let fresh = false;
        for (const k of keys) if (dedupRemember(db, k, receivedAt)) fresh = true;
        if (!fresh) return duplicate;
        const seq = appliance.nextSeq;
        const sealed = sealPart(e, part, seq, receivedAt);
        insertEnvelope(db, { appliance_id: row.id, seq, tenant_id: part.tenantId, received_at: receivedAt, ...sealed });
        appliance.nextSeq += 1;
        appliance.taken = true;
        return { tenantId: part.tenantId, outcome: 'queued', applianceId: row.id, seq, version };
      }),
  };
}
