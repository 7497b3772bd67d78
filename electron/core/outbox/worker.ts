import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { createJobLoop } from '../jobLoop';
import { CodedError } from '../../../shared/errors';
import {
  CALLBACK_PREFIX,
  countAttempt,
  dueJobs,
  expireUnconfirmed,
  failInvalidJob,
  markFailed,
  markJobDone,
  markRetry,
  markSending,
  markSent,
  markUnconfirmed,
  nextDueAt,
  pruneSettled,
  reconcileUnconfirmed,
  recoverInterrupted,
  REPEATABLE_KINDS,
  requeue,
  type OutboxRow,
  type StatusChange,
} from '../db/repo/outbox';
import { mediaSendHold, releaseCheckpoints } from '../db/checkpoints';
import { loadOutboundMedia, setUploadedMediaId } from '../db/repo/media';
import { clinicReaction, markReactionFailed, markReactionSent, type ReactionChange } from '../db/repo/reactions';
import type { Database } from '../db/types';
import type { GraphClient } from '../graph/client';
import type { OutboundFiles } from '../media/outboundFiles';
import { GraphError } from '../graph/errors';
import { addresseeFromId } from '../graph/schemas';

export interface RetryPolicy {
  /** First retry delay; doubles per attempt. */
  baseMs: number;
  /** Longest wait between two attempts. */
  maxMs: number;
  /** After this long since enqueue, a message still failing with retryable errors is marked failed. */
  giveUpAfterMs: number;
  /**
   * How long an unconfirmed send (crash or lost answer) waits for Meta's status webhook before it
   * is shown as "not confirmed" to staff. Meta posts `sent` within seconds; the relay may hold it
   * longer while the appliance is offline, and it still settles the message when it comes.
   */
  confirmWindowMs: number;
  /** How often a paused worker re-reads the token to see whether an admin replaced it. */
  pausedCheckMs: number;
  /** Idle poll, for rows whose backoff ends (a kick wakes the worker sooner). */
  pollMs: number;
  /** Settled rows are deleted after this long (the message row remains the record). */
  keepSettledMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseMs: 2_000,
  maxMs: 10 * 60_000,
  giveUpAfterMs: 6 * 60 * 60_000,
  confirmWindowMs: 15 * 60_000,
  pausedCheckMs: 5_000,
  pollMs: 1_000,
  keepSettledMs: 7 * 86_400_000,
};

const RECONCILE_LOOKBACK_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 60 * 60_000;

export interface OutboxWorkerDeps {
  db: Database;
  client: GraphClient;
  /** The same keychain getter the client uses: a changed token ends a pause. */
  getAccessToken(): Promise<string>;
  logger: Logger;
  now?: () => number;
  /** [0, 1): jitter source, injectable so tests are deterministic. */
  random?: () => number;
  policy?: Partial<RetryPolicy>;
  /** A message's status changed (sent, failed…): the lead emits `message.statusChanged`. */
  onStatusChanged?(change: StatusChange): void;
  /** Sending paused (token refused) or resumed: the lead emits `whatsapp.stateChanged`. */
  onTokenStateChanged?(expired: boolean): void;
  /** The clinic's reaction on a message was sent or failed: the lead emits `message.updated` for that message. */
  onReactionChanged?(change: ReactionChange): void;
  /** Files still being stored: uploaded from memory meanwhile, and sent only once stored. */
  files?: Pick<OutboundFiles, 'take'>;
}

export interface OutboxWorker {
  /** Recovers rows left `sending` by a crash, then sends due rows as they fall due. */
  start(): void;
  stop(): Promise<void>;
  /** Something was enqueued: look now instead of at the next poll. */
  kick(): void;
  /** One pass (tests drive the worker with this instead of timers). Returns rows attempted. */
  runOnce(): Promise<number>;
  /** True while sending is paused because Meta refused the token (190). */
  readonly tokenExpired: boolean;
  /** An admin saved a new token: try again now. */
  resume(): void;
}

const BATCH = 20;

/**
 * Sends what the outbox holds, one row at a time in enqueue order.
 *
 * Delivery is at-most-once toward the patient: a row is committed as `sending` before its request
 * leaves, and a row whose answer was lost (crash, timeout, reset) is never sent again on a guess.
 * It waits, unconfirmed, for the status webhook that carries its id in `biz_opaque_callback_data`,
 * and only if none comes within `confirmWindowMs` is it shown as failed, worded so staff check
 * before resending. A clinic would rather see "not confirmed" than have a patient receive the same
 * result notice twice; nothing is lost silently either way. Failures that provably never left
 * (connection refused, DNS, HTTP 429/5xx answers, rate-limit codes) are retried with backoff.
 */
export function createOutboxWorker(deps: OutboxWorkerDeps): OutboxWorker {
  const { db, client } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...deps.policy };
  const log = deps.logger.child({ component: 'outbox' });

  let paused = false;
  let refusedToken: string | null = null;
  let lastPausedCheck = 0;
  let lastPrune = 0;

  const fingerprint = (token: string) => createHash('sha256').update(token).digest('hex');

  function emit(change: StatusChange | null): void {
    if (change) deps.onStatusChanged?.(change);
  }

  function emitReaction(change: ReactionChange | null): void {
    if (change) deps.onReactionChanged?.(change);
  }

  /** Settles a row as failed: the message it sent shows the reason, or the reaction it sent does. */
  function fail(row: OutboxRow, p: { code: string; metaCode: number | null; title: string }): void {
    const t = now();
    if (row.job.kind === 'reaction') {
      markFailed(db, row.id, { ...p, now: t });
      emitReaction(markReactionFailed(db, { targetWamid: row.job.targetWamid, code: p.metaCode, title: p.title, now: t }));
    } else emit(markFailed(db, row.id, { ...p, now: t }));
  }

  function backoff(attempts: number): number {
    const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempts - 1));
    // Equal jitter: at least half the delay, so a burst of clinics does not retry in lockstep.
    return Math.round(exp / 2 + random() * (exp / 2));
  }

  function pause(token: string | null): void {
    refusedToken = token;
    if (!paused) {
      paused = true;
      log.warn('sending paused: WhatsApp refused the access token');
      deps.onTokenStateChanged?.(true);
    }
  }

  function unpause(): void {
    if (!paused) return;
    paused = false;
    refusedToken = null;
    log.info('sending resumed');
    deps.onTokenStateChanged?.(false);
  }

  async function currentTokenPrint(): Promise<string | null> {
    try {
      return fingerprint(await deps.getAccessToken());
    } catch {
      return null;
    }
  }

  function handleFailure(row: OutboxRow, err: unknown, stage: 'upload' | 'send', refusedPrint: string | null): void {
    const t = now();
    if (!(err instanceof GraphError)) {
      const code = err instanceof CodedError ? err.code : 'INTERNAL';
      log.error({ outboxId: row.id, stage, code }, 'outbox row failed without a Graph answer');
      fail(row, { code, metaCode: null, title: 'This message could not be prepared for sending.' });
      return;
    }
    const ctx = { outboxId: row.id, messageId: row.messageId, stage, kind: err.kind, metaCode: err.metaCode, http: err.httpStatus, attempts: row.attempts + 1 };
    if (err.kind === 'token_expired') {
      if (stage === 'upload') countAttempt(db, row.id, t);
      requeue(db, row.id, { code: err.code, detail: err.title, now: t });
      pause(refusedPrint);
      return;
    }
    // Only the send itself can have reached the patient; an upload repeated is harmless, and so is
    // a read receipt or a reaction sent twice (the patient sees the same state).
    if (err.maybeDelivered && stage === 'send' && !REPEATABLE_KINDS.has(row.job.kind)) {
      log.warn(ctx, 'send outcome unknown; waiting for the status webhook');
      markUnconfirmed(db, row.id, { deadline: t + policy.confirmWindowMs, detail: err.title, now: t });
      return;
    }
    if (err.kind === 'retryable') {
      if (t - row.createdAt >= policy.giveUpAfterMs) {
        log.warn(ctx, 'giving up after retries');
        fail(row, { code: err.code, metaCode: err.metaCode, title: `Could not be sent: ${err.title}` });
        return;
      }
      const delay = backoff(row.attempts + 1);
      log.info({ ...ctx, retryInMs: delay }, 'send will be retried');
      markRetry(db, row.id, { nextAttemptAt: t + delay, code: err.code, detail: err.title, now: t });
      return;
    }
    log.warn(ctx, 'WhatsApp refused the message');
    fail(row, { code: err.code, metaCode: err.metaCode, title: err.title });
  }

  async function process(row: OutboxRow): Promise<void> {
    try {
      await attempt(row);
    } finally {
      // Sent, failed or waiting for a retry: the stored file's checkpoint may run now.
      if (row.job.kind === 'media') releaseCheckpoints(db, mediaSendHold(row.job.mediaRowId));
    }
  }

  /**
   * Which token Meta refused, read once the 190 came back (a keychain read per send cost 1-12 ms
   * on the way to every tick; only a refusal needs it). A token an admin saved in that instant is
   * taken for the refused one: saving a token restarts the worker, which clears the pause anyway.
   */
  async function failed(row: OutboxRow, err: unknown, stage: 'upload' | 'send'): Promise<void> {
    const refused = err instanceof GraphError && err.kind === 'token_expired';
    handleFailure(row, err, stage, refused ? await currentTokenPrint() : null);
  }

  async function attempt(row: OutboxRow): Promise<void> {
    const job = row.job;
    let mediaId: string | null = null;
    let uploaded: string | null = null;
    if (job.kind === 'media') {
      // A file whose commit is still under way: its upload starts from the copy in memory.
      const handed = deps.files?.take(job.mediaRowId);
      const media = handed ? { content: handed.bytes, mimeType: handed.mimeType, filename: handed.filename, uploadedMediaId: null } : loadOutboundMedia(db, job.mediaRowId);
      if (!media) {
        emit(markFailed(db, row.id, { code: 'NOT_FOUND', metaCode: null, title: 'The attached file is not stored on this computer, so it was not sent. Attach it again.', now: now() }));
        return;
      }
      mediaId = media.uploadedMediaId;
      if (!mediaId) {
        try {
          const up = await (handed?.upload ?? client.uploadMedia({ phoneNumberId: job.phoneNumberId, bytes: media.content, mimeType: media.mimeType, filename: media.filename ?? 'file' }));
          mediaId = uploaded = up.mediaId;
        } catch (err) {
          await failed(row, err, 'upload');
          return;
        }
      }
      // Nothing reaches the patient before the file is on the disk: the message must never be
      // sent without the record of what it carried.
      if (handed) {
        try {
          await handed.stored;
        } catch (err) {
          fail(row, { code: err instanceof CodedError ? err.code : 'INTERNAL', metaCode: null, title: err instanceof Error ? err.message : 'The file could not be stored.' });
          return;
        }
      }
    }
    if (!claim(row, uploaded)) return;
    const callbackData = `${CALLBACK_PREFIX}${row.id}`;
    try {
      let wamid: string;
      if (job.kind === 'read') {
        await client.markRead({ phoneNumberId: job.phoneNumberId, wamid: job.wamid });
        wamid = job.wamid;
      } else if (job.kind === 'reaction') {
        // The emoji the desk wants now (a change made while this row waited goes out here).
        const emoji = clinicReaction(db, job.targetWamid)?.emoji;
        if (emoji === undefined) {
          // The reaction's message is gone (retention, erasure) since it was queued: nothing to send.
          markJobDone(db, row.id, now());
          return;
        }
        const sent = await client.sendReaction({ phoneNumberId: job.phoneNumberId, ...addresseeFromId(job.to), messageWamid: job.targetWamid, emoji, callbackData });
        markJobDone(db, row.id, now());
        emitReaction(markReactionSent(db, { targetWamid: job.targetWamid, emoji, wamid: sent.wamid, now: now() }));
        log.info({ outboxId: row.id, messageId: row.messageId, kind: row.kind, attempts: row.attempts + 1 }, 'sent');
        return;
      } else if (job.kind === 'media') {
        const sent = await client.sendMedia({
          phoneNumberId: job.phoneNumberId,
          ...addresseeFromId(job.to),
          kind: job.mediaKind,
          mediaId: mediaId!,
          callbackData,
          ...(job.caption ? { caption: job.caption } : {}),
          ...(job.filename ? { filename: job.filename } : {}),
          ...(job.replyToWamid ? { replyToWamid: job.replyToWamid } : {}),
        });
        wamid = sent.wamid;
      } else {
        const sent = await client.send(job.phoneNumberId, { ...job.request, biz_opaque_callback_data: callbackData });
        wamid = sent.wamid;
      }
      const change = settleSent(row.id, wamid);
      log.info({ outboxId: row.id, messageId: row.messageId, kind: row.kind, attempts: row.attempts + 1 }, 'sent');
      emit(change);
    } catch (err) {
      await failed(row, err, 'send');
    }
  }

  /**
   * Meta's answer, stored without waiting for the disk (`synchronous=NORMAL`: the commit is in the
   * WAL file, which the OS writes out even if the core is killed). Only a power cut in the next
   * moments can lose it, and then the row is still the `sending` that `claim` made durable: after
   * the restart it waits unconfirmed and Meta's status webhook, which names the row, settles it —
   * never a second send. Saves an fsync (2-9 ms here) between Meta's answer and the tick.
   */
  function settleSent(id: string, wamid: string): StatusChange | null {
    const previous = db.pragma('synchronous', { simple: true }) as number;
    db.pragma('synchronous = NORMAL');
    try {
      return markSent(db, id, wamid, now());
    } finally {
      db.pragma(`synchronous = ${previous}`);
    }
  }

  /**
   * Commits the row as `sending` (see markSending), with Meta's id for a file just uploaded in the
   * same commit: one fsync instead of two between upload and send. Lost with a crash before it, the
   * id only costs an upload again, which is harmless.
   */
  function claim(row: OutboxRow, uploadedMediaId: string | null): boolean {
    return db.transaction(() => {
      if (uploadedMediaId !== null && row.job.kind === 'media') setUploadedMediaId(db, row.job.mediaRowId, uploadedMediaId);
      return markSending(db, row.id, now());
    })();
  }

  async function pass(): Promise<number> {
    if (paused) {
      if (now() - lastPausedCheck < policy.pausedCheckMs) return 0;
      lastPausedCheck = now();
      const print = await currentTokenPrint();
      if (print === null || print === refusedToken) return 0;
      unpause();
    }
    if (now() - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = now();
      const pruned = pruneSettled(db, { before: now() - policy.keepSettledMs, unconfirmedBefore: now() - RECONCILE_LOOKBACK_MS });
      if (pruned) log.info({ count: pruned }, 'pruned settled outbox rows');
    }
    for (const change of reconcileUnconfirmed(db, now(), RECONCILE_LOOKBACK_MS)) {
      log.info({ messageId: change.messageId }, 'unconfirmed send settled by status webhook');
      emit(change);
    }
    for (const change of expireUnconfirmed(db, now())) {
      log.warn({ messageId: change.messageId }, 'unconfirmed send expired without a status webhook');
      emit(change);
    }
    // Re-query after each batch: a row held back behind an older one of the same conversation
    // becomes due as soon as that one is settled. Each row is tried at most once per pass.
    const tried = new Set<string>();
    for (;;) {
      const { due, invalid } = dueJobs(db, now(), BATCH + tried.size);
      for (const bad of invalid) {
        log.error({ outboxId: bad.id, kind: bad.kind }, 'dropping outbox row whose stored job no longer parses');
        emit(failInvalidJob(db, bad.id, now()));
      }
      const fresh = due.filter((r) => !tried.has(r.id)).slice(0, BATCH);
      if (fresh.length === 0) break;
      for (const row of fresh) {
        if (loop.stopped || paused) return tried.size;
        tried.add(row.id);
        await process(row);
      }
    }
    return tried.size;
  }

  const loop = createJobLoop({
    name: 'outbox',
    logger: log,
    pass,
    idleDelayMs() {
      if (paused) return Math.max(policy.pollMs, policy.pausedCheckMs);
      const due = nextDueAt(db);
      return due === null ? policy.pollMs : Math.max(0, Math.min(policy.pollMs, due - now()));
    },
    onStart() {
      const t = now();
      const r = recoverInterrupted(db, { deadline: t + policy.confirmWindowMs, now: t });
      if (r.requeued || r.unconfirmed) log.warn(r, 'recovered rows interrupted by a previous stop');
    },
  });

  return {
    start: loop.start,
    stop: loop.stop,
    kick: loop.kick,
    runOnce: loop.runOnce,
    get tokenExpired() {
      return paused;
    },
    resume() {
      lastPausedCheck = 0;
      refusedToken = null;
      unpause();
      loop.kick();
    },
  };
}
