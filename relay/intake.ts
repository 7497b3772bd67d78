/**
 * Webhook intake: Meta's signature, routing every change of a batch to its tenant, keyed
 * duplicate detection, and the group committer that seals and durably queues envelopes.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
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
import { RoutableWebhookSchema, type RoutableWebhook } from '../shared/whatsapp/routing';
import { authStaticDh, exportSecret, sealFirst, setupSender, x25519PublicFromRaw, type X25519KeyPair } from './crypto/hpke';
import { x25519PublicKeyProblem } from './crypto/keyCheck';
import { activeApplianceOf, dedupRemember, dedupSeen, insertEnvelope, takeSeq, type Db } from './store';

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
  plaintext: EnvelopePlaintext;
  /** Length of the plaintext's JSON text, the bytes the sealer encrypts (see `plaintextBytes`). */
  plaintextBytes: number;
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
  const parsed = RoutableWebhookSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

const META_PLAINTEXT_OVERHEAD = JSON.stringify({ kind: 'meta', body: '', signature: '' } satisfies EnvelopePlaintext).length;

/**
 * The exact length of `JSON.stringify(plaintext)` in UTF-8. A `meta` plaintext is base64url and a
 * hex signature, which JSON never escapes, so its length is arithmetic (no second copy of a
 * multi-megabyte body); a `relay` body is measured as it will be sealed.
 */
export function plaintextBytes(plaintext: EnvelopePlaintext): number {
  if (plaintext.kind === 'meta') return META_PLAINTEXT_OVERHEAD + plaintext.body.length + plaintext.signature.length;
  return Buffer.byteLength(JSON.stringify(plaintext));
}

/**
 * JSON with object keys sorted at every level: the same item serialises the same way whatever
 * order Meta's serialiser chose. Depth is bounded before routing (`nestingDepthExceeds`).
 */
export function canonicalJson(value: unknown): string {
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
  const keys = Object.keys(o).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    let quoted = QUOTED_KEYS.get(k);
    if (quoted === undefined) {
      quoted = `${JSON.stringify(k)}:`;
      if (QUOTED_KEYS.size < 10_000) QUOTED_KEYS.set(k, quoted);
    }
    if (!first) out += ',';
    out += quoted + canonicalJson(v);
    first = false;
  }
  return `${out}}`;
}
/** Meta's field names repeat in every webhook; bounded, since keys in a body are the sender's choice. */
const QUOTED_KEYS = new Map<string, string>();

const digest = (kind: string, item: unknown) => `${kind}\0${createHash('sha256').update(canonicalJson(item)).digest('base64url')}`;

/**
 * What makes one item recognisable when Meta sends it again: the whole item (a message or a
 * status object) with its context (the change's field and metadata, and the contacts it names),
 * never only its id. Meta reuses a message id for a reaction that is changed or removed, and a
 * status id for each of sent/delivered/read: those are new items, a retry is the same item.
 * Only a digest travels to the writer thread, which keys it with the relay's dedup secret.
 */
function itemsOf(change: Change): string[] {
  const { messages, statuses, contacts, ...context } = change.value as Record<string, unknown>;
  const contactsFor = (waId: unknown) => {
    if (!Array.isArray(contacts)) return [];
    const named = (contacts as { wa_id?: unknown }[]).filter((c) => c?.wa_id === waId);
    return named.length > 0 ? named : contacts;
  };
  const items: string[] = [];
  if (Array.isArray(messages)) {
    for (const m of messages as { from?: unknown }[]) items.push(digest('m', { field: change.field, context, contacts: contactsFor(m?.from), message: m }));
  }
  if (Array.isArray(statuses)) {
    for (const st of statuses as { recipient_id?: unknown }[]) {
      items.push(digest('s', { field: change.field, context, contacts: contactsFor(st?.recipient_id), status: st }));
    }
  }
  // A change with neither (template or account updates, unknown kinds) is recognised by its content.
  if (items.length === 0) items.push(digest('c', { field: change.field, value: change.value }));
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
    const plaintext: EnvelopePlaintext = whole
      ? { kind: 'meta', body: rawBody.toString('base64url'), signature: signature.trim().toLowerCase() }
      : { kind: 'relay', body: JSON.stringify({ ...body, entry: [...part.entries.values()] }) };
    parts.push({ tenantId, plaintext, plaintextBytes: plaintextBytes(plaintext), items: part.items, changes: part.changes });
  }
  return { parts, unknownPhoneNumber, noPhoneNumber };
}

export type PartOutcome =
  | { tenantId: string; outcome: 'queued'; applianceId: string; seq: number }
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

/** Prepares encapsulations for a tenant's active appliance (read-only on the SQLite store). */
export function createEncapsulator(deps: { db: Db; relayKeyPair: X25519KeyPair }) {
  const prepare = createRecipients(deps.relayKeyPair);
  return (tenantId: string): Encapsulation | undefined => {
    const appliance = activeApplianceOf(deps.db, tenantId);
    return appliance ? prepare(appliance) : undefined;
  };
}

/** The dedup key of one item of a tenant: an HMAC under the relay's dedup secret. */
export function createDedupHasher(dedupKey: Uint8Array): (tenantId: string, item: string) => Buffer {
  return (tenantId, item) => createHmac('sha256', dedupKey).update(`${tenantId}\0${item}`).digest();
}

/** The AEAD step that binds tenant, appliance, seq and receive time; what the queue row keeps. */
export function sealPart(e: Encapsulation, part: TenantPart, seq: number, receivedAt: number): { enc: Buffer; ct: Buffer; epoch: string | null } {
  const aad = Buffer.from(envelopeAad({ tenantId: part.tenantId, applianceId: e.applianceId, seq, receivedAt }));
  const plaintext = Buffer.from(JSON.stringify(part.plaintext));
  if (e.v === 1) return { enc: Buffer.from(e.enc), ct: sealFirst('aes-256-gcm', e.key, e.baseNonce, plaintext, aad), epoch: null };
  const key = exportSecret('aes-256-gcm', e.exporterSecret, envelopeV2ExporterContext(seq), 32);
  const nonce = randomBytes(ENVELOPE_V2_NONCE_BYTES);
  return { enc: Buffer.from(e.enc), ct: Buffer.concat([nonce, sealFirst('aes-256-gcm', key, nonce, plaintext, aad)]), epoch: e.epoch };
}

/**
 * Seals one webhook's tenant parts and queues them; runs inside the queue writer's transaction,
 * so seq assignment, the AEAD seal that binds the seq, and the insert commit together: seq order is
 * commit order. An encapsulation prepared ahead is used only if it was made for the tenant's
 * appliance as it is now (a re-pairing in between means sealing afresh).
 */
export function createSealer(deps: { db: Db; relayKeyPair: X25519KeyPair; dedupKey: Buffer }) {
  const { db } = deps;
  const encapsulate = createEncapsulator(deps);
  const dedupHash = createDedupHasher(deps.dedupKey);

  return (parts: TenantPart[], receivedAt: number): PartOutcome[] =>
    parts.map((part): PartOutcome => {
      const keys = part.items.map((i) => dedupHash(part.tenantId, i));
      if (keys.every((k) => dedupSeen(db, k))) return { tenantId: part.tenantId, outcome: 'duplicate' };
      const appliance = activeApplianceOf(db, part.tenantId);
      if (!appliance) return { tenantId: part.tenantId, outcome: 'no_appliance' };
      let e: Encapsulation;
      try {
        e = part.encapsulation?.applianceId === appliance.id ? part.encapsulation : encapsulate(part.tenantId)!;
      } catch {
        // Nothing of this part was written; the other parts of the webhook commit as usual.
        return { tenantId: part.tenantId, outcome: 'unsealable', applianceId: appliance.id };
      }
      const seq = takeSeq(db, appliance.id);
      const sealed = sealPart(e, part, seq, receivedAt);
      insertEnvelope(db, { appliance_id: appliance.id, seq, tenant_id: part.tenantId, received_at: receivedAt, ...sealed });
      for (const k of keys) dedupRemember(db, k, receivedAt);
      return { tenantId: part.tenantId, outcome: 'queued', applianceId: appliance.id, seq };
    });
}
