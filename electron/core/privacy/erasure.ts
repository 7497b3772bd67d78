import { createHmac, hkdfSync } from 'node:crypto';
import { CodedError } from '../../../shared/errors';
import type { Database } from '../db/types';
import { assertNoLegalHold } from './legalHold';
import { shardsOf } from '../db/searchShards';
import { mergeShardsNow, withIndexDeleteMarkers } from './searchIndexPurge';

/**
 * Erasing one patient (contact) everywhere the database holds them, on request (GDPR art. 17):
 * their messages (and so the search index, through its triggers), media, outbox requests, delivery
 * statuses, reactions, conversations, break-the-glass grants, failed deliveries that name them, and
 * the contact itself — in one transaction. `secure_delete` is on for every connection, so freed
 * pages are zeroed. In the same transaction the search index gets delete markers and the shards
 * holding the patient's conversations are merged into one segment each, which drops the markers
 * with the words they cover (`searchIndexPurge.ts`): once it commits, no current page of the index
 * holds them. `checkpointAfterErasure` then copies the WAL into the file and truncates it: from
 * then on no page of the file or the WAL holds the patient. (Drafts live only in the window's
 * memory, never in the database.)
 *
 * What stays is the erasure ledger: keyed hashes of the identifiers the contact had (HMAC-SHA256
 * under a key derived from the database key — a hash an outsider could recompute from a phone
 * number would itself be personal data), when and by whom. It travels in every later backup, so
 * restoring an older backup erases them again before anyone sees the data.
 */

export interface LedgerEntry {
  identifiersHash: string[];
  erasedAt: number;
  erasedBy: string;
}

/** The ledger's HMAC key: derived from the database key, so every backup of the installation agrees. */
export function ledgerKey(databaseKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', databaseKey, Buffer.alloc(0), Buffer.from('clinic-inbox erasure ledger v1'), 32));
}

export function hashIdentifier(key: Buffer, identifier: string): string {
  return createHmac('sha256', key).update(identifier).digest('hex');
}

interface ContactIds {
  id: number;
  wa_id: string | null;
  user_id: string | null;
  parent_user_id: string | null;
}

const identifiersOf = (c: ContactIds): string[] => [c.wa_id ? `wa:${c.wa_id}` : null, c.user_id ? `bsuid:${c.user_id}` : null, c.parent_user_id ? `bsuid:${c.parent_user_id}` : null].filter((x): x is string => x !== null);

function conversationsOf(db: Database, contactIds: number[]): number[] {
  const q = db.prepare('SELECT id FROM conversations WHERE contact_id = ?').pluck();
  return contactIds.flatMap((id) => q.all(id) as number[]);
}

/** Deletes every row about the contact; the caller holds the transaction (and `withIndexDeleteMarkers`). */
function deleteContactRows(db: Database, contact: ContactIds): void {
  const conversations = `SELECT id FROM conversations WHERE contact_id = ${Number(contact.id)}`;
  const messages = `SELECT id FROM messages WHERE conversation_id IN (${conversations})`;
  const wamids = `SELECT wamid FROM messages WHERE conversation_id IN (${conversations}) AND wamid IS NOT NULL`;
  db.exec(`
    DELETE FROM message_statuses WHERE wamid IN (${wamids});
    DELETE FROM message_statuses WHERE wamid IN (SELECT reaction_wamid FROM reactions WHERE reaction_wamid IS NOT NULL AND (target_wamid IN (${wamids}) OR contact_id = ${Number(contact.id)}));
    DELETE FROM reactions WHERE target_wamid IN (${wamids}) OR contact_id = ${Number(contact.id)};
    DELETE FROM outbox WHERE message_id IN (${messages});
    DELETE FROM media WHERE message_id IN (${messages});
    DELETE FROM messages WHERE conversation_id IN (${conversations});
    DELETE FROM conversations WHERE contact_id = ${Number(contact.id)};
    DELETE FROM break_glass WHERE contact_id = ${Number(contact.id)};
  `);
  for (const raw of [contact.wa_id, contact.user_id, contact.parent_user_id]) {
    if (!raw) continue;
    // Requests and failed deliveries not tied to a message row still name the patient.
    db.prepare('DELETE FROM outbox WHERE message_id IS NULL AND instr(request_json, ?) > 0').run(raw);
    db.prepare('DELETE FROM dead_letters WHERE instr(payload, ?) > 0').run(raw);
  }
  db.prepare('DELETE FROM contacts WHERE id = ?').run(contact.id);
}

export interface ErasureCheckpoint {
  /** Pages the WAL held (the erasure's own, unless other writes were not yet checkpointed). */
  pages: number;
  /** False when a reader kept the WAL from being emptied: old pages may hold the patient until the next checkpoint. */
  complete: boolean;
}

type CheckpointRow = { busy: number; log: number; checkpointed: number };

/**
 * After an erasure committed: moves the new (and zeroed) pages out of the WAL into the file, over
 * the old ones, and truncates the WAL. Best effort while readers hold it (after the busy timeout
 * it says so); the next automatic checkpoint then does it.
 */
export function checkpointAfterErasure(db: Database): ErasureCheckpoint {
  try {
    // PASSIVE first, because TRUNCATE reports 0 pages once it has emptied the WAL: it copies what no
    // reader still needs and counts the pages; TRUNCATE then waits for readers, copies the rest and
    // empties the WAL. Together they write each page once, as TRUNCATE alone does.
    const [passive] = db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[];
    const [truncate] = db.pragma('wal_checkpoint(TRUNCATE)') as CheckpointRow[];
    return { pages: Math.max(0, passive?.log ?? 0), complete: truncate?.busy === 0 };
  } catch {
    // A reader in progress: the next automatic checkpoint does it.
    return { pages: 0, complete: false };
  }
}

/**
 * Erases the contact and records the ledger entry, in the caller's transaction (the RPC's, with its
 * audit entry). Returns the ledger entry. Call `checkpointAfterErasure` once committed.
 */
export function eraseContact(db: Database, input: { contactId: number; erasedBy: string; now: number; databaseKey: Uint8Array }): LedgerEntry {
  const contact = db.prepare('SELECT id, wa_id, user_id, parent_user_id FROM contacts WHERE id = ?').get(input.contactId) as ContactIds | undefined;
  if (!contact) throw new CodedError('NOT_FOUND', 'There is no such contact (it may have been erased already).');
  // The medical-record duty outranks the request: a patient under legal hold is not erased.
  assertNoLegalHold(db, contact.id);
  const key = ledgerKey(input.databaseKey);
  const entry: LedgerEntry = { identifiersHash: identifiersOf(contact).map((i) => hashIdentifier(key, i)), erasedAt: input.now, erasedBy: input.erasedBy };
  const shards = shardsOf(conversationsOf(db, [contact.id]));
  withIndexDeleteMarkers(db, () => deleteContactRows(db, contact), shards);
  mergeShardsNow(db, shards);
  db.prepare('INSERT INTO erasure_ledger (identifiers_hash, erased_at, erased_by) VALUES (?, ?, ?)').run(JSON.stringify(entry.identifiersHash), entry.erasedAt, entry.erasedBy);
  return entry;
}

export function readLedger(db: Database): LedgerEntry[] {
  return (db.prepare('SELECT identifiers_hash AS h, erased_at AS at, erased_by AS by FROM erasure_ledger ORDER BY id').all() as { h: string; at: number; by: string }[]).map((r) => ({
    identifiersHash: JSON.parse(r.h) as string[],
    erasedAt: r.at,
    erasedBy: r.by,
  }));
}

/**
 * A restored (older) database, not yet open to anyone: erases again every contact any ledger entry
 * names, and adds the entries it did not have, in one transaction, the shards they were in merged
 * inside it (nobody waits on a database being restored). Returns how many contacts were erased again.
 */
export function reapplyErasures(db: Database, ledgers: LedgerEntry[][], databaseKey: Uint8Array): number {
  const key = ledgerKey(databaseKey);
  return db.transaction(() => {
    const known = new Set(readLedger(db).map((e) => [...e.identifiersHash].sort().join(',')));
    const byHash = new Map<string, LedgerEntry>();
    for (const entry of ledgers.flat()) {
      const id = [...entry.identifiersHash].sort().join(',');
      if (!known.has(id)) {
        known.add(id);
        db.prepare('INSERT INTO erasure_ledger (identifiers_hash, erased_at, erased_by) VALUES (?, ?, ?)').run(JSON.stringify(entry.identifiersHash), entry.erasedAt, entry.erasedBy);
      }
      for (const h of entry.identifiersHash) byHash.set(h, entry);
    }
    if (byHash.size === 0) return 0;
    const named = (db.prepare('SELECT id, wa_id, user_id, parent_user_id FROM contacts').all() as ContactIds[]).filter((c) => identifiersOf(c).some((i) => byHash.has(hashIdentifier(key, i))));
    if (named.length === 0) return 0;
    const shards = shardsOf(conversationsOf(db, named.map((c) => c.id)));
    withIndexDeleteMarkers(db, () => named.forEach((contact) => deleteContactRows(db, contact)), shards);
    mergeShardsNow(db, shards);
    return named.length;
  })();
}
