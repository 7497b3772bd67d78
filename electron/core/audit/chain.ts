// How the audit chain is hashed and walked: what a chain walker needs and nothing more, so a
// verification worker thread starts without the rest of the core (its schema, its wire types).
import { hash as sha256 } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3-multiple-ciphers';
import type { Database } from '../db/types';

export const GENESIS_HASH = '0'.repeat(64);

interface AuditRowAll {
  seq: number;
  at: number;
  user_id: string;
  role: string;
  action: string;
  method: string;
  contact_ids: string;
  origin: string;
  outcome: string;
  error_code: string | null;
  reason: string | null;
  display_name: string | null;
  session_id: string | null;
  hash_version: number;
  prev_hash: string;
  hash: string;
}

export type AuditRow = AuditRowFields & { hash: string };
export type AuditRowFields = Omit<AuditRowAll, 'hash'>;

/**
 * The digest of one version-2 entry's fields, in a fixed order. The chain links these digests, so
 * an export can leave an entry out and still prove the chain with the entry's digest alone.
 */
export function entryDigest(row: AuditRowFields): string {
  return digestOf([
    row.seq,
    row.at,
    row.user_id,
    row.display_name,
    row.role,
    row.session_id,
    row.action,
    row.method,
    row.contact_ids,
    row.origin,
    row.outcome,
    row.error_code,
    row.reason,
  ]);
}

/** The fields `entryDigest` covers, in its order: what an export reader or a fast walk passes. */
function digestOf(fields: readonly unknown[]): string {
  return sha256('sha256', JSON.stringify(fields), 'hex');
}

/** Links an entry to the one before: version 2 over its digest (see `entryDigest`). */
export function chainHash(prevHash: string, digest: string): string {
  return sha256('sha256', `${prevHash}\n${digest}`, 'hex');
}

/**
 * The hash of one entry covers every field and the previous hash. Version 1 (entries written
 * before accounts existed) hashed the fields directly; they keep verifying as they were written.
 */
export function entryHash(row: AuditRowFields): string {
  if (row.hash_version === 2) return chainHash(row.prev_hash, entryDigest(row));
  const body = JSON.stringify([
    row.seq,
    row.at,
    row.user_id,
    row.role,
    row.action,
    row.method,
    row.contact_ids,
    row.origin,
    row.outcome,
    row.error_code,
    row.reason,
  ]);
  return sha256('sha256', `${row.prev_hash}\n${body}`, 'hex');
}

/** The columns in the order `entryDigest` hashes them, then the chain's own: how fast readers select. */
export const AUDIT_COLUMNS =
  'seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason, hash_version, prev_hash, hash';
/** A row selected as `AUDIT_COLUMNS` with `.raw()`. */
export type AuditRawRow = [
  seq: number,
  at: number,
  user_id: string,
  display_name: string | null,
  role: string,
  session_id: string | null,
  action: string,
  method: string,
  contact_ids: string,
  origin: string,
  outcome: string,
  error_code: string | null,
  reason: string | null,
  hash_version: number,
  prev_hash: string,
  hash: string,
];
const DIGESTED = 13;

export function rowFromRaw(r: AuditRawRow): AuditRow {
  const [seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason, hash_version, prev_hash, hash] = r;
  return { seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason, hash_version, prev_hash, hash };
}

/** The hash a raw row should carry, chained to `prev` (not to its own prev_hash). */
export function rawEntryHash(r: AuditRawRow, prev: string): string {
  if (r[13] === 2) return chainHash(prev, digestOf(r.slice(0, DIGESTED)));
  return entryHash({ ...rowFromRaw(r), prev_hash: prev });
}

/** The digest a version-2 raw row is chained by. */
export function rawEntryDigest(r: AuditRawRow): string {
  return digestOf(r.slice(0, DIGESTED));
}

export type ChainVerdict =
  | { ok: true; /** How many entries were walked (from the anchor on, once pruned). */ entries: number; head: { seq: number; hash: string } | null; prunedThrough?: number }
  | { ok: false; entries: number; brokenAt: number; reason: string };

/**
 * Each entry's hashed body as SQLite writes it: for version 2 the same JSON as `entryDigest`, for
 * version 1 the same JSON as `entryHash` hashed directly, built without a row in JS.
 */
const SQL_BODY =
  'CASE WHEN hash_version = 2 THEN json_array(seq, at, user_id, display_name, role, session_id, action, method, contact_ids, origin, outcome, error_code, reason) ' +
  'ELSE json_array(seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason) END';

/** The contiguous stretch of the chain one walker checks: entries `from`..`to`, both included. */
export interface ChainRange {
  from: number;
  to: number;
}

/** What a walk of one range found: its own links checked, its two ends left for the stitch. */
export interface RangeWalk extends ChainRange {
  /** Entry `from`'s prev_hash, as stored; null when entry `from` is not there. */
  firstPrev: string | null;
  /** Entry `to`'s hash; null when the range broke before it. */
  lastHash: string | null;
  /** The first broken entry inside the range (its links to the range before are the stitch's to check). */
  broken: { entries: number; brokenAt: number; reason: string } | null;
}

/** Where a walk stands: the next seq it expects and the hash that entry must follow. */
interface WalkCursor {
  expectedSeq: number;
  prev: string | null;
  firstPrev: string | null;
  broken: RangeWalk['broken'];
  /** An entry whose SQL-built body did not hash to its stored hash: the JS check of the whole row decides. */
  suspect: { seq: number; hash: string } | null;
}

/** Thrown from inside the walk's aggregate to end its statement at the first entry JS must look at. */
const STOP = new Error('audit chain walk stopped');

interface Walker {
  cursor: WalkCursor | null;
  walk: BetterSqlite3.Statement<[number, number], number>;
  whole: BetterSqlite3.Statement<[number], AuditRawRow>;
}
const walkers = new WeakMap<Database, Walker>();

/**
 * The walk runs as an SQL aggregate over the range: SQLite hands each entry's four values straight
 * to `step`, about a third cheaper per entry than stepping a statement's rows from JS, and the whole
 * range is one statement (one read snapshot, no re-seeks). Rows reach `step` in seq order (a rowid
 * range scan); should they not, the seq check reports an entry missing, never a false "intact".
 */
function walkerFor(db: Database): Walker {
  const known = walkers.get(db);
  if (known) return known;
  const walker: Walker = { cursor: null, walk: null as never, whole: null as never };
  const step = (_acc: number, seq: number, prevHash: string, hash: string, version: number, body: string): void => {
    const c = walker.cursor!;
    if (seq !== c.expectedSeq) c.broken = { entries: c.expectedSeq, brokenAt: c.expectedSeq, reason: `entry ${c.expectedSeq} is missing` };
    else if (c.prev === null) c.firstPrev = c.prev = prevHash;
    else if (prevHash !== c.prev) c.broken = { entries: seq, brokenAt: seq, reason: `entry ${seq} does not follow entry ${seq - 1}` };
    if (c.broken) throw STOP;
    const expected = version === 2 ? chainHash(c.prev!, sha256('sha256', body, 'hex')) : sha256('sha256', `${c.prev!}\n${body}`, 'hex');
    if (expected !== hash) {
      c.suspect = { seq, hash };
      throw STOP;
    }
    c.prev = hash;
    c.expectedSeq += 1;
  };
  // The typings know one-argument steps only; SQLite is told the arity `step.length - 1`.
  db.aggregate('clinic_audit_chain_walk', { start: 0, directOnly: true, step: step as unknown as (acc: number, next: unknown) => void });
  walker.walk = db.prepare<[number, number], number>(`SELECT clinic_audit_chain_walk(seq, prev_hash, hash, hash_version, ${SQL_BODY}) FROM audit_log WHERE seq >= ? AND seq <= ?`).pluck();
  walker.whole = db.prepare<[number], AuditRawRow>(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq = ?`).raw();
  walkers.set(db, walker);
  return walker;
}

/**
 * Walks entries `from`..`to` in seq order: no gaps, every prev_hash the hash before it, every hash
 * recomputed. The first entry's prev_hash is taken as given and handed back, so ranges walked apart
 * (in worker threads) are joined by `stitchChain`. SQLite builds each entry's hashed body; should
 * its JSON ever differ from `entryDigest`'s (or version 1's), that row is read whole and hashed
 * here, so the verdict never rests on it, and the walk goes on after it. The first range has no
 * lower bound, so a stray entry before 1 reads as entry 1 missing, as a walk of the whole chain would.
 */
export function walkChainRange(db: Database, range: ChainRange): RangeWalk {
  const { from, to } = range;
  const walker = walkerFor(db);
  const c: WalkCursor = { expectedSeq: from, prev: null, firstPrev: null, broken: null, suspect: null };
  let lower = from === 1 ? Number.MIN_SAFE_INTEGER : from;
  for (;;) {
    walker.cursor = c;
    try {
      walker.walk.get(lower, to);
      break;
    } catch (err) {
      if (err !== STOP) throw err;
    } finally {
      walker.cursor = null;
    }
    if (c.broken) return { from, to, firstPrev: c.firstPrev, lastHash: null, broken: c.broken };
    const { seq, hash } = c.suspect!;
    c.suspect = null;
    if (rawEntryHash(walker.whole.get(seq) as AuditRawRow, c.prev!) !== hash) {
      return { from, to, firstPrev: c.firstPrev, lastHash: null, broken: { entries: seq, brokenAt: seq, reason: `entry ${seq} was altered` } };
    }
    c.prev = hash;
    c.expectedSeq = seq + 1;
    lower = seq + 1;
  }
  // The range's end was the head when the walk began: an entry short of it is one taken away.
  if (c.expectedSeq <= to) return { from, to, firstPrev: c.firstPrev, lastHash: null, broken: { entries: c.expectedSeq, brokenAt: c.expectedSeq, reason: `entry ${c.expectedSeq} is missing` } };
  return { from, to, firstPrev: c.firstPrev, lastHash: c.prev, broken: null };
}

/**
 * Joins walks of contiguous ranges (in seq order) into the verdict one walk of the whole chain
 * gives: range k+1's first prev_hash must be range k's last hash (the first range's, the genesis
 * hash, or the hash of the last entry a pruning removed), and the first broken entry in seq order is
 * the one named.
 */
export function stitchChain(walks: readonly RangeWalk[], start: ChainStart = GENESIS_START): ChainVerdict {
  let prev = start.prev;
  for (const w of walks) {
    if (w.firstPrev !== null && w.firstPrev !== prev) return { ok: false, entries: w.from, brokenAt: w.from, reason: `entry ${w.from} does not follow entry ${w.from - 1}` };
    if (w.broken) return { ok: false, ...w.broken };
    prev = w.lastHash!;
  }
  const last = walks.at(-1);
  return last ? { ok: true, entries: last.to - start.from + 1, head: { seq: last.to, hash: prev } } : { ok: true, entries: 0, head: null };
}

/**
 * Where a walk of the chain begins: entry 1 after the genesis hash, or, once old entries were
 * pruned (`audit_anchor`), the entry after the last one removed, which must follow that entry's hash.
 */
export interface ChainStart {
  from: number;
  prev: string;
}
export const GENESIS_START: ChainStart = { from: 1, prev: GENESIS_HASH };

/** The method of the chained entry a pruning writes before it deletes anything. */
export const PRUNE_METHOD = 'audit.pruned';

/** What a pruning states in its own entry: the chain then proves the anchor as it was when written. */
export interface PruneStatement {
  throughSeq: number;
  throughHash: string;
  count: number;
  cutAt: number;
}

/** The pruning entry's reason: readable by the auditor, and parsed back by the verifiers. */
export function pruneReason(p: PruneStatement): string {
  return `pruned entries through ${p.throughSeq} (hash ${p.throughHash}): ${p.count} entries older than ${new Date(p.cutAt).toISOString()}, the audit retention policy`;
}

export function parsePruneReason(reason: string | null): PruneStatement | null {
  const m = /^pruned entries through (\d+) \(hash ([0-9a-f]{64})\): (\d+) entries older than (\S+),/.exec(reason ?? '');
  if (!m) return null;
  const cutAt = Date.parse(m[4]!);
  return Number.isFinite(cutAt) ? { throughSeq: Number(m[1]), throughHash: m[2]!, count: Number(m[3]), cutAt } : null;
}
