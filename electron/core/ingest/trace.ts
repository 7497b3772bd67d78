import { createHash } from 'node:crypto';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { IGNORED_FIELD, UNATTRIBUTABLE, type NormalizedError, type NormalizedShelf } from './normalize';

/**
 * Nothing lost without a trace: what a delivery held that ingest could not file (a message nobody
 * can be named for, a field this version does not read) is shelved in `dead_letters` — encrypted
 * with the rest of the database, whole, so a later version can still ingest it — and Meta's
 * value-level errors are kept with their title and details. Both are counted for the admin.
 */

/** Shelves one item once (a redelivery of the same item adds nothing); true when it was new. */
export function shelveItem(db: Database, item: NormalizedShelf, receivedAt: number, now: number): boolean {
  const payload = JSON.stringify(item.payload);
  return (
    stmt(
      db,
      `INSERT INTO dead_letters (relay_seq, received_at, stored_at, reason, payload)
       SELECT NULL, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE reason = ? AND payload = ?)`,
    ).run(receivedAt, now, item.reason, payload, item.reason, payload).changes > 0
  );
}

/** Records one of Meta's value-level errors once; true when it was new. */
export function recordWebhookError(db: Database, e: NormalizedError, now: number): boolean {
  const digest = createHash('sha256').update(e.key).digest('base64url');
  return (
    stmt(
      db,
      `INSERT INTO webhook_errors (digest, phone_number_id, scope, code, title, message, details, href, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
    ).run(digest, e.phoneNumberId, e.scope, e.code, e.title, e.message, e.details, e.href, now).changes > 0
  );
}

/** Bumps a running count (e.g. `unsupported:unknown_type`) inside the delivery's transaction. */
export function bumpIngestCount(db: Database, name: string, now: number): void {
  stmt(
    db,
    `INSERT INTO ingest_counts (name, count, last_at) VALUES (?, 1, ?)
     ON CONFLICT (name) DO UPDATE SET count = count + 1, last_at = excluded.last_at`,
  ).run(name, now);
}

export interface IngestTrace {
  /** Messages no sender could be named for, shelved. */
  unattributable: { count: number; lastAt: number | null };
  /** Changes of fields this version does not read, shelved, by field name. */
  ignoredFields: { field: string; count: number; lastAt: number }[];
  /** Every shelved delivery or item, by reason (signature failures, unreadable bodies, the above). */
  shelved: { reason: string; count: number; lastAt: number }[];
  /** Stored but shown only as "cannot show yet", by reason (`meta_unsupported`, `unknown_type`, `malformed`). */
  unsupported: { reason: string; count: number; lastAt: number }[];
  /** Meta's most recent value-level errors, newest first. */
  recentErrors: { code: number; title: string | null; message: string | null; details: string | null; href: string | null; phoneNumberId: string | null; at: number }[];
}

/** What the admin's WhatsApp status shows about deliveries that could not be shown as they came. */
export function ingestTrace(db: Database, errorLimit = 10): IngestTrace {
  const reasons = stmt(db, 'SELECT reason, count(*) AS count, max(stored_at) AS last_at FROM dead_letters GROUP BY reason ORDER BY reason').all() as {
    reason: string;
    count: number;
    last_at: number;
  }[];
  // Reasons of envelopes that did not open carry a code; they are grouped as they are.
  const shelved = reasons.map((r) => ({ reason: r.reason, count: r.count, lastAt: r.last_at }));
  const un = shelved.find((r) => r.reason === UNATTRIBUTABLE);
  const unsupported = (stmt(db, `SELECT name, count, last_at FROM ingest_counts WHERE name LIKE 'unsupported:%' ORDER BY name`).all() as {
    name: string;
    count: number;
    last_at: number;
  }[]).map((r) => ({ reason: r.name.slice('unsupported:'.length), count: r.count, lastAt: r.last_at }));
  const errors = stmt(
    db,
    'SELECT code, title, message, details, href, phone_number_id, received_at FROM webhook_errors ORDER BY received_at DESC, id DESC LIMIT ?',
  ).all(errorLimit) as { code: number; title: string | null; message: string | null; details: string | null; href: string | null; phone_number_id: string | null; received_at: number }[];
  return {
    unattributable: { count: un?.count ?? 0, lastAt: un?.lastAt ?? null },
    ignoredFields: shelved.filter((r) => r.reason.startsWith(IGNORED_FIELD)).map((r) => ({ field: r.reason.slice(IGNORED_FIELD.length), count: r.count, lastAt: r.lastAt })),
    shelved,
    unsupported,
    recentErrors: errors.map((e) => ({ code: e.code, title: e.title, message: e.message, details: e.details, href: e.href, phoneNumberId: e.phone_number_id, at: e.received_at })),
  };
}
