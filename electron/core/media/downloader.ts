import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { createJobLoop } from '../jobLoop';
import {
  discoverInboundMedia,
  dueDownloads,
  markDownloadFinal,
  markDownloadRetry,
  markDownloading,
  nextDownloadAt,
  resetInterruptedDownloads,
  storeDownloaded,
  type InboundMediaJob,
  type MediaState,
} from '../db/repo/media';
import type { Database } from '../db/types';
import type { GraphClient } from '../graph/client';
import { GraphError, MediaTooLargeError } from '../graph/errors';
import { sha256Bytes } from '../graph/schemas';
import { MEDIA_KINDS, MEDIA_MAX_BYTES, mediaKindForMime, type MediaKind } from './limits';

export interface MediaPolicy {
  baseMs: number;
  maxMs: number;
  /**
   * Attempts that failed because of the file itself (hash mismatch, expired URL) before it is shown
   * as failed; staff can retry while Meta keeps the id (~30 days).
   */
  maxAttempts: number;
  /** Network trouble and a refused token do not count as attempts; they end only after this long. */
  maxAgeMs: number;
  pollMs: number;
}

export const DEFAULT_MEDIA_POLICY: MediaPolicy = { baseMs: 2_000, maxMs: 5 * 60_000, maxAttempts: 8, maxAgeMs: 3 * 86_400_000, pollMs: 2_000 };

export interface MediaChange {
  mediaRowId: number;
  messageId: number | null;
  conversationId: number | null;
  state: MediaState;
}

export interface MediaDownloaderDeps {
  db: Database;
  client: GraphClient;
  logger: Logger;
  now?: () => number;
  random?: () => number;
  policy?: Partial<MediaPolicy>;
  /** A media row reached a final state: the lead emits `conversation.updated` so the thread redraws. */
  onChanged?(change: MediaChange): void;
}

export interface MediaDownloader {
  start(): void;
  stop(): Promise<void>;
  /**
   * Ingest stored messages: fetch their media now (Meta's download URLs last minutes). With
   * `discover: false` the caller already created the rows for what came in: no scan of every media message.
   */
  kick(options?: { discover?: boolean }): void;
  runOnce(): Promise<number>;
}

class HashMismatch extends Error {}

/**
 * Fetches inbound media soon after ingest: a fresh URL from the media id on every attempt (URLs
 * expire in minutes, ids in weeks), refused above Meta's size limit for the type before and during
 * the download, checked against the SHA-256 Meta gave in the webhook and in the media endpoint,
 * and only then stored — inside the encrypted database, never as a plain file.
 */
export function createMediaDownloader(deps: MediaDownloaderDeps): MediaDownloader {
  const { db, client } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const policy: MediaPolicy = { ...DEFAULT_MEDIA_POLICY, ...deps.policy };
  const log = deps.logger.child({ component: 'media' });

  function kindOf(job: InboundMediaJob): MediaKind {
    if (job.messageType && (MEDIA_KINDS as readonly string[]).includes(job.messageType)) return job.messageType as MediaKind;
    return (job.mimeType && mediaKindForMime(job.mimeType)) || 'document';
  }

  function final(job: InboundMediaJob, state: 'stored' | 'failed' | 'too_large'): void {
    deps.onChanged?.({ mediaRowId: job.id, messageId: job.messageId, conversationId: job.conversationId, state });
  }

  /**
   * `fileFault`: the attempt failed because of what Meta served (wrong hash, dead URL), so it
   * counts toward `maxAttempts`. Otherwise (network, throttling, token) it is refunded and only the
   * age limit applies, so a clinic's internet outage does not fail every picture sent meanwhile.
   */
  function retryOrFail(job: InboundMediaJob, reason: string, fileFault: boolean): void {
    const attempts = fileFault ? job.attempts + 1 : job.attempts;
    if (attempts >= policy.maxAttempts || now() - job.createdAt >= policy.maxAgeMs) {
      markDownloadFinal(db, job.id, { state: 'failed', error: reason, size: null, now: now() });
      log.warn({ mediaRowId: job.id, attempts, reason }, 'media download failed for good');
      final(job, 'failed');
      return;
    }
    // File faults back off by attempt; refunded failures by how long this file has waited, so an
    // outage is probed often at first and then every few minutes.
    const exp = fileFault
      ? Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempts - 1))
      : Math.min(policy.maxMs, Math.max(policy.baseMs, (now() - job.createdAt) / 4));
    const delay = Math.round(exp / 2 + random() * (exp / 2));
    markDownloadRetry(db, job.id, { nextAttemptAt: now() + delay, error: reason, now: now(), refundAttempt: !fileFault });
    log.info({ mediaRowId: job.id, attempts, retryInMs: delay, reason }, 'media download will be retried');
  }

  async function download(job: InboundMediaJob): Promise<void> {
    const kind = kindOf(job);
    const maxBytes = MEDIA_MAX_BYTES[kind];
    markDownloading(db, job.id, now());
    try {
      const info = await client.getMediaInfo(job.mediaId);
      if (info.fileSize > maxBytes) throw new MediaTooLargeError(info.fileSize, maxBytes);
      const bytes = await client.downloadMedia(info.url, { maxBytes });
      const actual = createHash('sha256').update(bytes).digest();
      // Both hashes Meta gave must match: the webhook's (what the patient sent) and the endpoint's.
      for (const claimed of [job.sha256 ? sha256Bytes(job.sha256) : null, info.sha256]) {
        if (claimed && !timingSafeEqual(claimed, actual)) throw new HashMismatch('sha256 mismatch');
      }
      if (!job.sha256 && !info.sha256) throw new HashMismatch('no sha256 from Meta to check against');
      storeDownloaded(db, job.id, { content: bytes, mimeType: info.mimeType, sha256Hex: actual.toString('hex'), now: now() });
      log.info({ mediaRowId: job.id, kind, size: bytes.length }, 'media stored');
      final(job, 'stored');
    } catch (err) {
      if (err instanceof MediaTooLargeError) {
        markDownloadFinal(db, job.id, { state: 'too_large', error: `larger than the ${maxBytes}-byte limit for ${kind}`, size: err.size, now: now() });
        log.warn({ mediaRowId: job.id, kind, size: err.size, maxBytes }, 'media refused: too large');
        final(job, 'too_large');
      } else if (err instanceof HashMismatch) {
        log.warn({ mediaRowId: job.id }, 'media refused: sha256 does not match');
        retryOrFail(job, err.message, true);
      } else if (err instanceof GraphError) {
        // 100: Meta no longer knows this media id; asking again will not help.
        if (err.kind === 'permanent' && err.metaCode === 100) {
          markDownloadFinal(db, job.id, { state: 'failed', error: err.title, size: null, now: now() });
          final(job, 'failed');
        } else {
          // Retryable, token trouble (the outbox surfaces that), or an expired URL (404): try again
          // with a fresh URL.
          retryOrFail(job, err.title, err.kind === 'permanent');
        }
      } else {
        log.error({ mediaRowId: job.id, err: err instanceof Error ? err.name : 'error' }, 'media download crashed');
        retryOrFail(job, 'internal error', true);
      }
    }
  }

  // Discovery scans every media message without a row; it runs when ingest says something came
  // in (kick), at start and on explicit passes, not on every idle poll.
  let discover = true;

  async function pass(): Promise<number> {
    if (discover) {
      discover = false;
      const found = discoverInboundMedia(db, now());
      if (found) log.info({ count: found }, 'new inbound media queued');
    }
    let done = 0;
    for (const job of dueDownloads(db, now(), 10)) {
      if (loop.stopped) break;
      done += 1;
      await download(job);
    }
    return done;
  }

  const loop = createJobLoop({
    name: 'media',
    logger: log,
    pass,
    idleDelayMs() {
      const due = nextDownloadAt(db);
      return due === null ? policy.pollMs : Math.max(0, Math.min(policy.pollMs, due - now()));
    },
    onStart() {
      const n = resetInterruptedDownloads(db, now());
      if (n) log.warn({ count: n }, 'downloads interrupted by a previous stop will be retried');
    },
  });

  return {
    start: loop.start,
    stop: loop.stop,
    kick(options) {
      if (options?.discover !== false) discover = true;
      loop.kick();
    },
    runOnce() {
      discover = true;
      return loop.runOnce();
    },
  };
}
