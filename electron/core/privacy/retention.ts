import { CodedError } from '../../../shared/errors';
import type { RetentionCounts, RetentionKind, RetentionRule, RetentionRun } from '../../../shared/rpc';
import { RETENTION_MAX_DAYS } from '../../../shared/rpc';
import { readAnchor } from '../audit/anchor';
import { anchorPrune, deletePrunedBatch, pruneDue, type AuditSubject } from '../audit/prune';
import { unlinkDiscardedMediaFiles } from '../db/repo/media';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { shardOf, shardSegmentCount } from '../db/searchShards';
import { createHoldSizer } from './holdSizer';
import { checkpointBetween, createIndexMerger, probedBetween, redoableTransaction, withDeferredIndexMerges } from './searchIndexPurge';

/**
 * Retention: each kind of data is kept for its policy's days and then purged, in batches small
 * enough that no single transaction holds the database for more than the budget (50 ms), with the
 * event loop free between them so other windows' queries run. Patients under legal hold are skipped.
 *
 * - messages: every message of a conversation whose last activity is older than the policy (with
 *   its statuses, reactions, outbox rows and files), then the empty conversation. The contact
 *   (and its consent history) stays.
 * - media: a stored file older than the policy loses its bytes; the message says the file is gone.
 * - drafts: the composer's drafts live only in the window's memory, never in the database, so
 *   there is nothing to purge here; the rule is kept for when drafts are stored.
 * - audit: the entries before the first one at or after the policy's cut are pruned. First an
 *   ordinary chained entry (`audit.pruned`) states the last entry removed and its hash, and the
 *   anchor (`audit_anchor`, migration 0140) records the same, in one synced transaction; only then
 *   are the entries deleted, oldest first, in batches (the log's trigger refuses any entry the
 *   anchor does not cover). The chain verifies from the anchor on (`audit/anchor.ts`). A run cut
 *   short finishes the deletes behind the anchor at the next run.
 */

const DAY = 24 * 60 * 60_000;
export const HOLD_BUDGET_MS = 50;
/** FTS5's `usermerge`: a level is merged once it holds this many segments. */
const MERGE_AFTER_SEGMENTS = 4;
/**
 * Audit entries deleted between two PASSIVE checkpoints. A checkpoint syncs the WAL and the file
 * (two fsyncs: taken after every audit batch, they were more than half the run's time on the
 * benchmark's busy disk); deleting an entry with its index and `audit_contacts` rows writes ~2.4 KB
 * to the WAL (measured: 1.2 MB for 520), so 1,500 of them stay under the 1,000-page automatic
 * checkpoint, which would otherwise run inside the next synced commit (an anchor's) and hold it.
 */
const AUDIT_ROWS_PER_CHECKPOINT = 1_500;
/** The most audit entries one pruning plans and anchors (its read walks them). */
export const AUDIT_PLAN_CHUNK = 20_000;

export function retentionRules(db: Database): RetentionRule[] {
  return (stmt(db, 'SELECT kind, days, legal_minimum_days, updated_at, updated_by FROM retention_policy ORDER BY kind').all() as {
    kind: RetentionKind;
    days: number;
    legal_minimum_days: number;
    updated_at: number;
    updated_by: string;
  }[]).map((r) => ({ kind: r.kind, days: r.days, legalMinimumDays: r.legal_minimum_days, updatedAt: r.updated_at, updatedBy: r.updated_by }));
}

export function updateRetentionRules(db: Database, rules: { kind: RetentionKind; days: number; legalMinimumDays: number }[], p: { by: string; now: number }): RetentionRule[] {
  for (const r of rules) {
    if (r.days < r.legalMinimumDays) {
      throw new CodedError('VALIDATION_FAILED', `${r.kind}: ${r.days} days is shorter than the legal minimum you chose (${r.legalMinimumDays} days).`);
    }
    if (r.days > RETENTION_MAX_DAYS || r.legalMinimumDays > RETENTION_MAX_DAYS) throw new CodedError('VALIDATION_FAILED', `${r.kind}: at most 20 years (${RETENTION_MAX_DAYS} days).`);
  }
  for (const r of rules) {
    stmt(db, 'UPDATE retention_policy SET days = ?, legal_minimum_days = ?, updated_at = ?, updated_by = ? WHERE kind = ?').run(r.days, r.legalMinimumDays, p.now, p.by, r.kind);
  }
  return retentionRules(db);
}

function cutoffs(db: Database, now: number): Record<RetentionKind, number> {
  const out = {} as Record<RetentionKind, number>;
  for (const r of retentionRules(db)) out[r.kind] = now - r.days * DAY;
  return out;
}

const NOT_HELD = 'c.contact_id NOT IN (SELECT contact_id FROM legal_holds)';

export function previewRetention(db: Database, now: number): RetentionCounts {
  const cut = cutoffs(db, now);
  // What a run would delete: up to the entry it would anchor, or the rows an earlier run left behind its anchor.
  const plan = pruneDue(db, cut.audit);
  const audit = stmt(db, 'SELECT count(*) FROM audit_log WHERE seq <= ?').pluck().get(plan.throughSeq) as number;
  return { ...previewData(db, cut), audit, auditHeld: plan.held };
}

/** The preview without what the audit pruning would take (a run plans that in bounded chunks). */
function previewData(db: Database, cut: Record<RetentionKind, number>): Omit<RetentionCounts, 'audit' | 'auditHeld'> {
  const messages = stmt(db, `SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.last_activity_at < ? AND ${NOT_HELD}`).pluck().get(cut.messages) as number;
  const conversations = stmt(db, `SELECT count(*) FROM conversations c WHERE c.last_activity_at < ? AND ${NOT_HELD}`).pluck().get(cut.messages) as number;
  // Files that go with their messages are counted there, not twice.
  const media = stmt(
    db,
    `SELECT count(*) FROM media x JOIN messages m ON m.id = x.message_id JOIN conversations c ON c.id = m.conversation_id
      WHERE (x.content IS NOT NULL OR x.file_name IS NOT NULL) AND x.created_at < ? AND c.last_activity_at >= ? AND ${NOT_HELD}`,
  ).pluck().get(cut.media, cut.messages) as number;
  const auditDue = stmt(db, 'SELECT count(*) FROM audit_log WHERE at < ?').pluck().get(cut.audit) as number;
  const heldPatients = stmt(
    db,
    `SELECT count(DISTINCT h.contact_id) FROM legal_holds h JOIN conversations c ON c.contact_id = h.contact_id
      WHERE c.last_activity_at < ?
         OR EXISTS (SELECT 1 FROM messages m JOIN media y ON y.message_id = m.id WHERE m.conversation_id = c.id AND (y.content IS NOT NULL OR y.file_name IS NOT NULL) AND y.created_at < ?)`,
  ).pluck().get(cut.messages, cut.media) as number;
  return { messages, conversations, media, drafts: 0, auditDue, heldPatients };
}

/**
 * One stretch of a run that keeps other work waiting. `locked`: the write lock is held (BEGIN
 * IMMEDIATE to COMMIT done, or an autocommit write); otherwise only this thread is busy (a read, a
 * checkpoint), which other connections do not wait on but this connection's callers do.
 * - `record`: the run's own row in `retention_runs` (an autocommit write, synced);
 * - `batch` / `media` / `audit`: one batch of message deletes / media clears / audit entries
 *   pruned behind the anchor (`bodyMs` of it before COMMIT);
 * - `anchor`: the audit pruning's chained entry and anchor (synced);
 * - `merge-step`: one step of the search index's merging after the batches (what FTS5's automerge
 *   would have done inside them), timed around its transaction;
 * - `purge-step`: one step of the index purge at the end (every segment of a shard into one);
 * - `plan`: the preview and the list of due conversations (reads);
 * - `checkpoint`: the PASSIVE checkpoint between batches.
 */
export interface RetentionHold {
  kind: 'record' | 'anchor' | 'batch' | 'media' | 'audit' | 'merge-step' | 'purge-step' | 'plan' | 'checkpoint';
  locked: boolean;
  ms: number;
  cpuMs: number;
  rows?: number;
  /** Of a batch: the wall clock and CPU time before COMMIT (the rest is the commit: the index's segment flush and automerge, the WAL write). */
  bodyMs?: number;
  bodyCpuMs?: number;
  /** What `RetentionRunOptions.probe` counted over the stretch (its end reading minus its start). */
  probed?: Record<string, number>;
}

export interface RetentionRunOptions {
  now: () => number;
  trigger: 'schedule' | 'manual';
  /** Who the audit pruning's own entry names (the admin who pressed "run now", or the system). */
  by?: AuditSubject;
  budgetMs?: number;
  /** The most audit entries one pruning plans and anchors (AUDIT_PLAN_CHUNK). */
  auditPlanChunk?: number;
  /** Between batches: lets the event loop (other connections) run. */
  pause?: () => Promise<void>;
  /** Told of every hold and busy stretch (the benchmark's distribution). */
  onHold?: (hold: RetentionHold) => void;
  /**
   * Read just before and just after every hold, outside its timing; the hold carries the
   * difference (`probed`). The benchmark counts with it where a hold's wall time off the CPU went
   * (waiting for a core, bytes written to the WAL, reads from the file).
   */
  probe?: () => Record<string, number>;
}

export interface RetentionRunResult {
  runId: number;
  counts: RetentionCounts;
  longestHoldMs: number;
  /** The CPU time of the longest-CPU hold (batch, merge or purge step, run record): what the wall clock is without waiting for a core. */
  longestHoldCpuMs: number;
  /** The longest checkpoint between batches (the event loop busy, the database not held). */
  longestCheckpointMs: number;
  batches: number;
}

const RETENTION_SUBJECT: AuditSubject = { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, origin: 'core' };
const immediate = () => new Promise<void>((r) => setImmediate(r));
const cpuMsOf = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

/**
 * Purges what expired. Each batch is one IMMEDIATE transaction whose size adapts so it stays well
 * inside the budget (aiming at a third of it), with the search index's merge work taken out of it
 * (`withDeferredIndexMerges`) and done after it in steps inside the same budget; at the end every
 * shard is merged into one segment, in steps too (`createIndexMerger`). The longest hold is
 * recorded with the run.
 */
export async function runRetention(db: Database, options: RetentionRunOptions): Promise<RetentionRunResult> {
  // Retention runs its own short transactions, so it must not start inside a caller's: an RPC
  // handler's synchronous start runs in the dispatch's transaction, which commits at the first await.
  await Promise.resolve();
  const budget = options.budgetMs ?? HOLD_BUDGET_MS;
  const pause = options.pause ?? immediate;
  let longest = 0;
  // The same stretch's CPU time (this process): on a machine with more runnable work than cores,
  // the wall clock of a batch also counts the time it waited to be scheduled.
  let longestCpu = 0;
  let longestCheckpoint = 0;
  let batches = 0;
  const record = (hold: RetentionHold) => {
    if (hold.locked) {
      longest = Math.max(longest, hold.ms);
      longestCpu = Math.max(longestCpu, hold.cpuMs);
    }
    if (hold.kind === 'checkpoint') longestCheckpoint = Math.max(longestCheckpoint, hold.ms);
    options.onHold?.(hold);
  };
  /** Runs `fn` and records how long it kept others waiting. */
  const timed = <T>(kind: RetentionHold['kind'], locked: boolean, fn: () => T, more?: (out: T) => Partial<RetentionHold>): T => {
    const p0 = options.probe?.();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const out = fn();
    const ms = performance.now() - t0;
    const cpuMs = cpuMsOf(process.cpuUsage(cpu0));
    record({ kind, locked, ms, cpuMs, ...more?.(out), ...probedBetween(p0, options.probe) });
    return out;
  };

  const startedAt = options.now();
  const runId = timed('record', true, () =>
    Number(stmt(db, `INSERT INTO retention_runs (started_at, trigger, outcome) VALUES (?, ?, 'running')`).run(startedAt, options.trigger).lastInsertRowid),
  );
  const cut = cutoffs(db, startedAt);
  const before = timed('plan', false, () => previewData(db, cut));
  const counts: RetentionCounts = { messages: 0, conversations: 0, media: 0, drafts: 0, audit: 0, auditDue: before.auditDue, auditHeld: 0, heldPatients: before.heldPatients };
  // Rows per batch from the wall clock of the batches before it (`holdSizer.ts`), aiming at a third
  // of the budget: a batch after a slow one is cut to fit at once. Measured and not adopted:
  // cutting each batch by its own clock (checked after every row, at 30% of the budget), when
  // FTS5's merge work still ran inside single DELETEs and more, smaller commits made the longest
  // hold higher in 3 runs of 3; resting between holds once one was kept waiting for a core (no
  // less waiting inside the holds, at load 7–10, and a slower run) (privacy/README.md).
  const newSizer = () => createHoldSizer({ aimMs: budget / 3, perUnitMs: 0.2, min: 1, max: 5_000, growth: 1.5, release: 0.3 });
  const sizer = newSizer();
  // An audit entry costs far less to delete than a message with its index entries: its own estimate.
  const auditSizer = newSizer();

  /** Runs one batch, times it, and updates the estimate and the next batch's size. */
  const batch = <T extends { n: number }>(kind: 'batch' | 'media' | 'audit', fn: (n: number) => T, of = sizer): T => {
    let bodyMs = 0;
    let bodyCpuMs = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const out = timed(
      kind,
      true,
      () =>
        redoableTransaction(db, () => {
          const r = fn(of.size());
          bodyMs = performance.now() - t0;
          bodyCpuMs = cpuMsOf(process.cpuUsage(cpu0));
          return r;
        }),
      (r) => ({ rows: r.n, bodyMs, bodyCpuMs }),
    );
    const ms = performance.now() - t0;
    batches += 1;
    of.observe(out.n, ms);
    return out;
  };
  const between = async () => {
    timed('checkpoint', false, () => checkpointBetween(db));
    await pause();
  };
  const merger = createIndexMerger(db, {
    budgetMs: budget,
    pause,
    probe: options.probe,
    onStep: (s) => record({ kind: s.mode === 'level' ? 'merge-step' : 'purge-step', locked: true, ms: s.ms, cpuMs: s.cpuMs, ...(s.probed ? { probed: s.probed } : {}) }),
  });

  // The conversations due now, read once; each batch re-checks its conversation's activity, so one
  // that a patient wrote to during the run is left alone.
  const conversationsDue = timed(
    'plan',
    false,
    () => stmt(db, `SELECT c.id FROM conversations c WHERE c.last_activity_at < ? AND ${NOT_HELD} ORDER BY c.id`).pluck().all(cut.messages) as number[],
  );
  const messagesOf = stmt(
    db,
    `SELECT m.id, m.wamid FROM messages m WHERE m.conversation_id = ?
        AND (SELECT c.last_activity_at FROM conversations c WHERE c.id = m.conversation_id AND ${NOT_HELD}) < ? LIMIT ?`,
  );
  const deleteStatuses = stmt(db, 'DELETE FROM message_statuses WHERE wamid = ?');
  // The statuses Meta posted about the clinic's own reactions go with the reactions.
  const deleteReactionStatuses = stmt(db, 'DELETE FROM message_statuses WHERE wamid IN (SELECT reaction_wamid FROM reactions WHERE target_wamid = ? AND reaction_wamid IS NOT NULL)');
  const deleteReactions = stmt(db, 'DELETE FROM reactions WHERE target_wamid = ?');
  const deleteOutbox = stmt(db, 'DELETE FROM outbox WHERE message_id = ?');
  // All of a batch's messages in one statement: FTS5 writes its pending entries out to a new
  // segment at every statement that reaches it (a savepoint), so one DELETE per message would
  // leave one segment per message in its shard.
  const deleteMessages = stmt(db, 'DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))');
  const deleteConversation = stmt(
    db,
    `DELETE FROM conversations AS c WHERE c.id = ? AND c.last_activity_at < ? AND ${NOT_HELD} AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)`,
  );
  const finish = (outcome: 'ok' | 'failed') =>
    timed('record', true, () =>
      stmt(db, `UPDATE retention_runs SET finished_at = ?, counts_json = ?, longest_hold_ms = ?, outcome = ? WHERE id = ?`).run(options.now(), JSON.stringify(counts), longest, outcome, runId),
    );
  try {
    // A batch takes messages from as many due conversations as its size allows (clinics have many
    // short conversations: one batch each would pay a commit per conversation), deleting each
    // conversation it empties. The search index gets delete markers and no merge work inside the
    // batch (one new segment in each shard it touched); once a shard has 4 new segments, the
    // merger does what automerge would have done, in steps, and the purge at the end merges the
    // words out.
    const segmentsAfterMerge = new Map<number, number>();
    const mergeIfDue = async (shards: number[]) => {
      const due = shards.filter((k) => {
        const now = shardSegmentCount(db, k);
        if (!segmentsAfterMerge.has(k)) segmentsAfterMerge.set(k, now - 1);
        return now - segmentsAfterMerge.get(k)! >= MERGE_AFTER_SEGMENTS;
      });
      await merger.keepUp(due);
      for (const k of due) segmentsAfterMerge.set(k, shardSegmentCount(db, k));
    };
    let next = 0;
    while (next < conversationsDue.length) {
      let shards: number[] = [];
      const { n } = batch('batch', (limit) => {
        const taken: { id: number; wamid: string | null }[] = [];
        const emptied: number[] = [];
        const deferred = withDeferredIndexMerges(db, (touch) => {
          while (next < conversationsDue.length && taken.length < limit) {
            const conversationId = conversationsDue[next]!;
            const rows = messagesOf.all(conversationId, cut.messages, limit - taken.length) as { id: number; wamid: string | null }[];
            if (rows.length > 0) touch(shardOf(conversationId));
            const isLast = rows.length < limit - taken.length;
            taken.push(...rows);
            if (!isLast) break;
            emptied.push(conversationId);
            next += 1;
          }
          for (const r of taken) {
            if (r.wamid) {
              deleteStatuses.run(r.wamid);
              deleteReactionStatuses.run(r.wamid);
              deleteReactions.run(r.wamid);
            }
            deleteOutbox.run(r.id);
          }
          deleteMessages.run(JSON.stringify(taken.map((r) => r.id)));
          for (const conversationId of emptied) counts.conversations += deleteConversation.run(conversationId, cut.messages).changes;
          return taken.length;
        });
        shards = deferred.shards;
        return { n: deferred.result };
      });
      counts.messages += n;
      await between();
      await mergeIfDue(shards);
    }

    const expiredMedia = stmt(
      db,
      `UPDATE media SET content = NULL, file_name = NULL, file_key = NULL, state = 'failed', last_error = 'removed by the retention policy', updated_at = ?
        WHERE id IN (SELECT x.id FROM media x JOIN messages m ON m.id = x.message_id JOIN conversations c ON c.id = m.conversation_id
                      WHERE (x.content IS NOT NULL OR x.file_name IS NOT NULL) AND x.created_at < ? AND ${NOT_HELD} LIMIT ?)`,
    );
    for (;;) {
      const { n } = batch('media', (limit) => ({ n: expiredMedia.run(startedAt, cut.media, limit).changes }));
      counts.media += n;
      if (n === 0) break;
      await pause();
    }
    // The files of the rows this run deleted or cleared (their keys went with the rows).
    unlinkDiscardedMediaFiles(db);

    // The audit log in chunks of at most `auditPlanChunk` entries, each planned (a short read),
    // anchored and deleted before the next: a first pruning of a large backlog never reads it in
    // one stretch, and a run stopped mid-way leaves at most one chunk behind its anchor.
    let auditSinceCheckpoint = 0;
    for (let more = true; more; ) {
      const plan = timed('plan', false, () => pruneDue(db, cut.audit, options.auditPlanChunk ?? AUDIT_PLAN_CHUNK));
      counts.auditHeld = plan.held;
      more = plan.more;
      if (plan.count > 0 && auditSinceCheckpoint > 0) {
        // The anchor's commit is synced: it must not also carry the WAL's automatic checkpoint.
        auditSinceCheckpoint = 0;
        await between();
      }
      if (plan.count > 0) timed('anchor', true, () => anchorPrune(db, { ...plan, cutAt: cut.audit, at: options.now(), by: options.by ?? RETENTION_SUBJECT }));
      const through = readAnchor(db)?.throughSeq ?? 0;
      for (;;) {
        const { n } = batch('audit', (limit) => ({ n: deletePrunedBatch(db, through, limit) }), auditSizer);
        counts.audit += n;
        auditSinceCheckpoint += n;
        if (n === 0) break;
        if (auditSinceCheckpoint >= AUDIT_ROWS_PER_CHECKPOINT) {
          auditSinceCheckpoint = 0;
          await between();
        } else await pause();
      }
    }
    // Every run ends with the purge, so words of messages deleted by this run, or by an erasure
    // whose purge a crash cut short, leave the index's pages; in steps inside the same budget.
    await merger.purge();
    const merged = merger.result();
    longestCheckpoint = Math.max(longestCheckpoint, merged.longestCheckpointMs);
    batches += merged.steps;
    finish('ok');
  } catch (err) {
    finish('failed');
    throw err;
  }
  return { runId, counts, longestHoldMs: longest, longestHoldCpuMs: longestCpu, longestCheckpointMs: longestCheckpoint, batches };
}

export function lastRetentionRun(db: Database): RetentionRun | null {
  const r = stmt(db, 'SELECT * FROM retention_runs ORDER BY id DESC LIMIT 1').get() as
    | { id: number; started_at: number; finished_at: number | null; trigger: 'schedule' | 'manual'; outcome: 'running' | 'ok' | 'failed'; counts_json: string | null; longest_hold_ms: number | null }
    | undefined;
  return r ? toRun(r) : null;
}

export function retentionRun(db: Database, id: number): RetentionRun | null {
  const r = stmt(db, 'SELECT * FROM retention_runs WHERE id = ?').get(id) as Parameters<typeof toRun>[0] | undefined;
  return r ? toRun(r) : null;
}

function toRun(r: { id: number; started_at: number; finished_at: number | null; trigger: 'schedule' | 'manual'; outcome: 'running' | 'ok' | 'failed'; counts_json: string | null; longest_hold_ms: number | null }): RetentionRun {
  return {
    id: r.id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    trigger: r.trigger,
    outcome: r.outcome,
    // Runs from before audit pruning counted nothing pruned or held.
    counts: r.counts_json ? { audit: 0, auditHeld: 0, ...(JSON.parse(r.counts_json) as Omit<RetentionCounts, 'audit' | 'auditHeld'> & { audit?: number; auditHeld?: number }) } : null,
    longestHoldMs: r.longest_hold_ms,
  };
}

/** When the last successful run started; the daily job runs again 24 h after it. */
export function lastSuccessfulRunAt(db: Database): number | null {
  return (stmt(db, `SELECT max(started_at) FROM retention_runs WHERE outcome = 'ok'`).pluck().get() as number | null) ?? null;
}
