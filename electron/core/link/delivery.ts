import { EnvelopePlaintextSchema, type EnvelopePlaintext } from '../../../shared/envelope';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { applyWebhook, emptyApplyResult, type ApplyResult } from '../ingest/apply';
import { verifyMetaSignature, type AppSecretKeys } from './metaSignature';

/**
 * What the appliance could say about who wrote a delivery's body:
 * - `verified`: Meta's `X-Hub-Signature-256` checked out under this clinic's app secret;
 * - `mismatch`: it did not; the delivery was shelved, not applied;
 * - `relay-vouched`: a multi-clinic POST re-serialised by the relay, which no Meta signature covers
 *   (shelved as a `mismatch` instead while the admin requires Meta's signature);
 * - `unchecked`: no app secret is set up here, so only the relay vouches for it (as before).
 */
export type SignatureVerdict = 'verified' | 'mismatch' | 'relay-vouched' | 'unchecked';

export interface IngestResult extends ApplyResult {
  relaySeq: number;
  /** True when the delivery was not applied and was shelved in `dead_letters` instead. */
  deadLettered: boolean;
  signature: SignatureVerdict;
}

/** The `dead_letters.reason` of deliveries whose Meta signature did not check out. */
export const SIGNATURE_MISMATCH = 'meta signature mismatch';

/**
 * Running counts in `settings` since the app secret was last set, bumped inside the delivery's own
 * transaction so they never disagree with what was stored. Failures are counted from `dead_letters`.
 */
export const SIGNATURE_COUNTERS = {
  verified: 'meta_signature_verified',
  relayVouched: 'meta_signature_relay_vouched',
} as const;

export interface IngestOptions {
  relaySeq: number;
  receivedAt: number;
  now: number;
  /** This clinic's Meta app secrets; null or absent: signature checking is off. */
  appSecrets?: AppSecretKeys | null | undefined;
  /**
   * Only Meta-signed deliveries are applied: a `relay` one (which no Meta signature covers) is
   * shelved like a mismatch. For a clinic with its own Meta app, which never gets mixed POSTs, so
   * that the relay's key alone cannot put a message in the inbox. Ignored without `appSecrets`.
   */
  requireMetaSignature?: boolean | undefined;
}

/**
 * One opened relay delivery → the store. When an app secret is set up, a `meta` delivery must
 * carry Meta's valid signature over its exact bytes before it is even parsed; one that does not is
 * shelved in `dead_letters` (reason `meta signature mismatch`, the whole plaintext kept so it can
 * be checked again under another secret) and never touches the inbox. A body that is not a webhook
 * at all (not JSON, not the outer shape) is shelved too — encrypted with the rest of the database,
 * so a later version can still ingest it. Either way the delivery counts as committed so the queue
 * moves on, and this returns only after the commit, so the caller may ack.
 */
export function ingestDelivery(db: Database, plaintext: EnvelopePlaintext, options: IngestOptions): IngestResult {
  const secrets = options.appSecrets ?? null;
  let signature: SignatureVerdict = 'unchecked';
  let text: string;
  if (plaintext.kind === 'meta') {
    const raw = Buffer.from(plaintext.body, 'base64url');
    if (secrets) {
      if (!verifyMetaSignature(secrets, raw, plaintext.signature)) {
        shelve(db, options, SIGNATURE_MISMATCH, JSON.stringify(plaintext));
        return { ...emptyApplyResult(), relaySeq: options.relaySeq, deadLettered: true, signature: 'mismatch' };
      }
      signature = 'verified';
      bump(db, SIGNATURE_COUNTERS.verified, options.now);
    }
    text = raw.toString('utf8');
  } else {
    if (secrets && options.requireMetaSignature) {
      shelve(db, options, SIGNATURE_MISMATCH, JSON.stringify(plaintext));
      return { ...emptyApplyResult(), relaySeq: options.relaySeq, deadLettered: true, signature: 'mismatch' };
    }
    if (secrets) {
      signature = 'relay-vouched';
      bump(db, SIGNATURE_COUNTERS.relayVouched, options.now);
    }
    text = plaintext.body;
  }

  let reason: string | null = null;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    reason = 'not JSON';
  }
  const parsed = reason === null ? WebhookSchema.safeParse(body) : null;
  if (parsed && !parsed.success) reason = `not a webhook: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`).join('; ')}`;
  if (!parsed?.success) {
    shelve(db, options, reason ?? 'unreadable', text);
    return { ...emptyApplyResult(), relaySeq: options.relaySeq, deadLettered: true, signature };
  }
  return { ...applyWebhook(db, parsed.data, { receivedAt: options.receivedAt }), relaySeq: options.relaySeq, deadLettered: false, signature };
}

/** The `dead_letters.reason` prefix of envelopes that did not open; the payload is the envelope as it came. */
export const UNOPENABLE = 'envelope could not be opened';

/**
 * An envelope that did not open under this appliance's keys, shelved as it came (ciphertext only:
 * nothing readable is stored) so the delivery can be acked and the queue behind it moves on.
 */
export function shelveUnopenable(db: Database, failure: { code: string; envelope: unknown }, options: IngestOptions): IngestResult {
  shelve(db, options, `${UNOPENABLE}: ${failure.code}`, JSON.stringify(failure.envelope));
  return { ...emptyApplyResult(), relaySeq: options.relaySeq, deadLettered: true, signature: 'unchecked' };
}

export interface SignatureRecheck {
  /** Shelved deliveries that now verified and were applied, in the order they first arrived. */
  applied: IngestResult[];
  /** Shelved deliveries that still do not verify under the secrets given. */
  stillFailing: number;
}

/**
 * Checks every delivery shelved for a signature mismatch again under `appSecrets` (after an admin
 * corrected or rotated the app secret, or stopped requiring Meta's signature) and applies, in the
 * order they first arrived and in one transaction, the `meta` ones that now verify and — unless
 * `requireMetaSignature` is still on — the `relay` ones shelved while it was.
 * What still fails stays shelved: it may be a forgery, and keeping it lets someone look later.
 */
export function recheckShelvedSignatures(db: Database, appSecrets: AppSecretKeys, now: number, requireMetaSignature = false): SignatureRecheck {
  return db
    .transaction((): SignatureRecheck => {
      const rows = stmt(db, 'SELECT id, relay_seq, received_at, payload FROM dead_letters WHERE reason = ? ORDER BY id').all(SIGNATURE_MISMATCH) as {
        id: number;
        relay_seq: number | null;
        received_at: number;
        payload: string;
      }[];
      const applied: IngestResult[] = [];
      let stillFailing = 0;
      for (const row of rows) {
        const plaintext = parseShelved(row.payload);
        const passes =
          plaintext?.kind === 'meta'
            ? verifyMetaSignature(appSecrets, Buffer.from(plaintext.body, 'base64url'), plaintext.signature)
            : plaintext?.kind === 'relay' && !requireMetaSignature;
        if (!plaintext || !passes) {
          stillFailing += 1;
          continue;
        }
        stmt(db, 'DELETE FROM dead_letters WHERE id = ?').run(row.id);
        applied.push(ingestDelivery(db, plaintext, { relaySeq: row.relay_seq ?? 0, receivedAt: row.received_at, now, appSecrets, requireMetaSignature }));
      }
      return { applied, stillFailing };
    })
    .immediate();
}

/** How many deliveries are shelved for a signature mismatch (in all, and shelved at or after `since`), and when the latest was. */
export function shelvedSignatureFailures(db: Database, since: number | null): { count: number; countSince: number; lastAt: number | null } {
  const row = stmt(
    db,
    'SELECT count(*) AS n, count(CASE WHEN stored_at >= ? THEN 1 END) AS recent, max(stored_at) AS last FROM dead_letters WHERE reason = ?',
  ).get(since ?? 0, SIGNATURE_MISMATCH) as { n: number; recent: number; last: number | null };
  return { count: row.n, countSince: row.recent, lastAt: row.last };
}

/** Starts the running counts again (a new secret gets its own tally). */
export function resetSignatureCounters(db: Database): void {
  stmt(db, 'DELETE FROM settings WHERE key IN (?, ?)').run(SIGNATURE_COUNTERS.verified, SIGNATURE_COUNTERS.relayVouched);
}

export function signatureCounter(db: Database, key: (typeof SIGNATURE_COUNTERS)[keyof typeof SIGNATURE_COUNTERS]): number {
  const row = stmt(db, 'SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
  const n = row ? Number(row.value) : 0;
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

function bump(db: Database, key: string, now: number): void {
  stmt(
    db,
    `INSERT INTO settings (key, value, updated_at) VALUES (?, '1', ?)
     ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT), updated_at = excluded.updated_at`,
  ).run(key, now);
}

function shelve(db: Database, options: IngestOptions, reason: string, payload: string): void {
  // A redelivery of the same seq (its ack was lost) must not shelve it twice.
  stmt(
    db,
    `INSERT INTO dead_letters (relay_seq, received_at, stored_at, reason, payload)
     SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE relay_seq IS ? AND payload = ?)`,
  ).run(options.relaySeq, options.receivedAt, options.now, reason, payload, options.relaySeq, payload);
}

function parseShelved(payload: string): EnvelopePlaintext | null {
  try {
    const parsed = EnvelopePlaintextSchema.safeParse(JSON.parse(payload));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
