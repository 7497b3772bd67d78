// The clinic's outgoing files between "send" and "stored": their bytes go to the writer thread
// (`mediaWriter.ts`), which commits them into the encrypted database on its own connection (from
// 256 KiB on, as an encrypted file beside it whose key the commit records), while
// the outbox uploads the same bytes from memory. A 5 MB image's commit (encrypting 1,280 pages,
// then the fsync) took longer than the whole upload; done on the event loop, it also held the
// upload's socket still. Nothing waits less for it: the send's answer, and the message itself
// (the outbox sends it only after this commit), still come after the file is on the disk.
import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { CodedError } from '../../../shared/errors';
import { setUploadedMediaId, storeOutboundContent, sweepMediaFilesAtStart } from '../db/repo/media';
import type { Database } from '../db/types';
import type { QueuedFile } from '../outbox/sendService';
import { startWorkerThread } from '../workerThread';
import type { FromWriter, MediaWriterData, ToWriter } from './mediaWriter';

/** A file being stored, as the outbox's first attempt takes it to upload from memory. */
export interface HandedFile extends QueuedFile {
  bytes: Buffer;
  /** Settles when the bytes are committed; rejects (`CodedError`) when they could not be. */
  stored: Promise<void>;
  /** Its upload to Meta, when the send started it at once (see `BegunFile.store`); else the outbox uploads. */
  upload?: Promise<{ mediaId: string }>;
}

/** A file's bytes on their way to the writer thread, before the row they go into is committed. */
export interface BegunFile {
  /**
   * As `OutboundFiles.store`, for these bytes. `upload` starts their upload to Meta from memory
   * the moment the message's rows are committed, rather than when the outbox's next pass gets
   * there (an upload reaches no patient: the message itself still waits for this commit).
   */
  store(file: QueuedFile, upload?: (bytes: Buffer) => Promise<{ mediaId: string }>): Promise<void>;
  /** The message was not queued: nothing will be stored. */
  cancel(): void;
}

export interface OutboundFiles {
  /**
   * Hands the bytes to the writer thread at once, so their SHA-256 is computed there while the
   * message's rows commit; `store` or `cancel` must follow.
   */
  begin(bytes: Buffer): BegunFile;
  /**
   * Commits the bytes of the `pending` row `file.mediaRowId` (queued with `queueMediaSend`, whose
   * transaction is committed) and resolves once they are on the disk. Until then `take` hands
   * them to the outbox.
   */
  store(file: QueuedFile & { bytes: Buffer }): Promise<void>;
  /** The bytes of a file still being stored, once: the outbox uploads them instead of reading the row back. */
  take(mediaRowId: number): HandedFile | undefined;
  /** Waits for the writes under way, then stops the thread. */
  close(): Promise<void>;
}

export interface OutboundFilesDeps {
  /** The core's connection: the writes' fallback when the thread cannot run. */
  db: Database;
  database: { path: string; key: Uint8Array };
  logger: Logger;
  now: () => number;
}

const NOT_STORED = 'The file could not be stored on this computer, so it was not sent. Attach it again.';

export function createOutboundFiles(deps: OutboundFilesDeps): OutboundFiles {
  const { db, now } = deps;
  const log = deps.logger.child({ component: 'outbound-files' });
  const handed = new Map<number, HandedFile>();
  const taken = new WeakSet<HandedFile>();
  const writes = new Map<number, { resolve(stored: boolean): void; reject(err: Error): void }>();
  const underWay = new Set<Promise<void>>();
  let thread: Worker | null = null;
  let nextId = 1;
  let closed = false;

  // At start, before any write: files whose rows are gone, or never committed (a crash between a
  // file's fsync and its row's commit). Files younger than the sweep's grace are left alone.
  try {
    const removed = sweepMediaFilesAtStart(db, now());
    if (removed > 0) log.info({ removed }, 'media files no row names were removed');
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.name : 'unknown' }, 'media files could not be swept; the next start tries again');
  }

  function spawn(): Worker {
    const w = startWorkerThread(import.meta.url, './mediaWriter', {
      workerData: { databasePath: deps.database.path, databaseKey: Buffer.from(deps.database.key).toString('hex') } satisfies MediaWriterData,
    });
    w.on('message', (m: FromWriter) => {
      const waiting = writes.get(m.id);
      writes.delete(m.id);
      if ('error' in m) waiting?.reject(new Error(m.error));
      else waiting?.resolve(m.stored);
    });
    w.on('error', (err) => log.error({ err: err.name }, 'media writer thread failed'));
    w.on('exit', (code) => {
      if (thread === w) thread = null;
      // What it had not answered is written again here (the store is idempotent).
      for (const [id, waiting] of writes) {
        writes.delete(id);
        waiting.reject(new Error('exited'));
      }
      if (!closed) log.warn({ code }, 'media writer thread stopped; the next file starts it again');
    });
    w.unref();
    return w;
  }

  function post(m: ToWriter): void {
    thread ??= spawn();
    // Bytes in shared memory (as `decodeFileBase64` makes them) reach the thread without a copy.
    thread.postMessage(m);
  }

  function inThread(id: number, mediaRowId: number, bytes: Buffer): Promise<boolean> {
    const done = new Promise<boolean>((resolve, reject) => writes.set(id, { resolve, reject }));
    post({ kind: 'store', id, mediaRowId, bytes, now: now() });
    return done;
  }

  function here(mediaRowId: number, bytes: Buffer): boolean {
    return storeOutboundContent(db, { mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: now() });
  }

  async function write(id: number, mediaRowId: number, bytes: Buffer): Promise<void> {
    let stored: boolean;
    try {
      stored = await inThread(id, mediaRowId, bytes);
    } catch (err) {
      log.warn({ mediaRowId, err: err instanceof Error ? err.message : 'unknown' }, 'media writer thread did not store the file; storing it on the core thread');
      try {
        stored = here(mediaRowId, bytes);
      } catch (again) {
        log.error({ mediaRowId, err: again instanceof Error ? again.name : 'unknown' }, 'outgoing file could not be stored');
        throw new CodedError('INTERNAL', NOT_STORED);
      }
    }
    if (!stored) throw new CodedError('NOT_FOUND', 'The message was deleted before its file was stored, so it was not sent.');
  }

  /**
   * An upload the outbox did not take while the file was being stored (it was busy sending older
   * rows): Meta's id goes on the message, so the outbox's attempt, reading the file back, sends
   * by that id instead of uploading the file a second time.
   */
  function keepUploadedId(entry: HandedFile, upload: Promise<{ mediaId: string }>): void {
    upload.then(
      ({ mediaId }) => {
        if (taken.has(entry)) return;
        try {
          setUploadedMediaId(db, entry.mediaRowId, mediaId);
        } catch (err) {
          log.warn({ mediaRowId: entry.mediaRowId, err: err instanceof Error ? err.name : 'unknown' }, "Meta's id of an uploaded file was not kept; the outbox uploads it again");
        }
      },
      // A failed upload is the outbox's to report, when it takes the file or uploads it itself.
      () => undefined,
    );
  }

  async function store(id: number, file: QueuedFile & { bytes: Buffer }, upload?: Promise<{ mediaId: string }>): Promise<void> {
    if (closed) throw new CodedError('INTERNAL', NOT_STORED);
    const stored = write(id, file.mediaRowId, file.bytes);
    const entry: HandedFile = { ...file, stored, ...(upload ? { upload } : {}) };
    handed.set(file.mediaRowId, entry);
    if (upload) keepUploadedId(entry, upload);
    underWay.add(stored);
    // The outbox awaits `stored` only if it takes the file; settled here either way.
    stored.catch(() => undefined);
    try {
      await stored;
    } finally {
      underWay.delete(stored);
      handed.delete(file.mediaRowId);
    }
  }

  return {
    begin(bytes) {
      const id = nextId++;
      if (!closed) post({ kind: 'hash', id, bytes });
      return {
        store: (file, upload) => store(id, { ...file, bytes }, upload?.(bytes)),
        cancel: () => void (thread && post({ kind: 'drop', id })),
      };
    },
    store: (file) => store(nextId++, file),
    take(mediaRowId) {
      const file = handed.get(mediaRowId);
      handed.delete(mediaRowId);
      if (file) taken.add(file);
      return file;
    },
    async close() {
      closed = true;
      await Promise.allSettled([...underWay]);
      await thread?.terminate();
      thread = null;
    },
  };
}
