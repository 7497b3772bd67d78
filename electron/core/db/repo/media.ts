import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { FILE_THRESHOLD, mediaDirOf, readMediaFile, type StoredFile, sweepMediaFiles, unlinkMediaFiles, writeMediaFile } from '../../media/fileStore';
import { stmt } from '../statements';
import type { Database } from '../types';

/**
 * Media bytes live in `media.content`, inside the SQLCipher database, or, for the clinic's large
 * outgoing files, in an AES-256-GCM file beside it whose key is only in the row (`file_name`,
 * `file_key`, see `media/fileStore.ts`): encrypted at rest either way, removed with the message,
 * never a plain file on the desk PC. Every reader goes through `readMediaBytes`. Inbound rows follow
 * `pending → downloading → stored | failed | too_large`; outbound rows are `stored` from the start
 * and gain Meta's media id (`media_id`) once uploaded.
 */
export type MediaState = 'pending' | 'downloading' | 'stored' | 'failed' | 'too_large';

export interface InboundMediaJob {
  id: number;
  mediaId: string;
  messageId: number | null;
  conversationId: number | null;
  /** Meta's message type (image, audio, video, document, sticker): decides the size limit. */
  messageType: string | null;
  mimeType: string | null;
  /** From the webhook (base64) — the hash Meta vouched for when the patient sent it. */
  sha256: string | null;
  attempts: number;
  createdAt: number;
}

const discoverFrom = (from: string) => `INSERT INTO media (media_id, message_id, mime_type, sha256, filename, state, attempts, next_attempt_at, created_at, updated_at)
     SELECT m.media_id, m.id,
            json_extract(m.content_json, '$.' || m.type || '.mime_type'),
            json_extract(m.content_json, '$.' || m.type || '.sha256'),
            json_extract(m.content_json, '$.' || m.type || '.filename'),
            'pending', 0, ?, ?, ?
       FROM ${from}
      WHERE m.direction = 'inbound' AND m.media_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM media x WHERE x.media_id = m.media_id)
     ON CONFLICT (media_id) DO NOTHING`;
/**
 * Creates a `pending` row for every inbound message that names a Meta media id and has none yet.
 * Idempotent, so ingest need not know about media: the downloader runs this before each pass.
 * With `messageIds`, only those messages are looked at (after a delivery: its new messages, not
 * every media message ever stored).
 */
export function discoverInboundMedia(db: Database, now: number, messageIds?: readonly number[]): number {
  if (messageIds === undefined) return stmt(db, discoverFrom('messages m')).run(now, now, now).changes;
  if (messageIds.length === 0) return 0;
  // CROSS JOIN keeps the given ids as the outer loop (one rowid lookup each).
  return stmt(db, discoverFrom('json_each(?) j CROSS JOIN messages m ON m.id = j.value')).run(now, now, now, JSON.stringify(messageIds)).changes;
}

/** Rows a crash left `downloading` go back to `pending`: a download repeated is harmless. */
export function resetInterruptedDownloads(db: Database, now: number): number {
  return stmt(db, `UPDATE media SET state = 'pending', updated_at = ? WHERE state = 'downloading'`).run(now).changes;
}

export function dueDownloads(db: Database, now: number, limit: number): InboundMediaJob[] {
  const rows = stmt(
    db,
    `SELECT x.id, x.media_id, x.message_id, m.conversation_id, m.type, x.mime_type, x.sha256, x.attempts, x.created_at
       FROM media x LEFT JOIN messages m ON m.id = x.message_id
      WHERE x.state = 'pending' AND x.next_attempt_at <= ? AND x.media_id IS NOT NULL
      ORDER BY x.next_attempt_at, x.id LIMIT ?`,
  ).all(now, limit) as Array<{
    id: number;
    media_id: string;
    message_id: number | null;
    conversation_id: number | null;
    type: string | null;
    mime_type: string | null;
    sha256: string | null;
    attempts: number;
    created_at: number;
  }>;
  return rows.map((r) => ({
    id: r.id,
    mediaId: r.media_id,
    messageId: r.message_id,
    conversationId: r.conversation_id,
    messageType: r.type,
    mimeType: r.mime_type,
    sha256: r.sha256,
    attempts: r.attempts,
    createdAt: r.created_at,
  }));
}

export function nextDownloadAt(db: Database): number | null {
  return (stmt(db, `SELECT min(next_attempt_at) AS at FROM media WHERE state = 'pending' AND media_id IS NOT NULL`).get() as { at: number | null }).at;
}

export function markDownloading(db: Database, id: number, now: number): void {
  stmt(db, `UPDATE media SET state = 'downloading', attempts = attempts + 1, updated_at = ? WHERE id = ?`).run(now, id);
}

export function storeDownloaded(db: Database, id: number, p: { content: Buffer; mimeType: string; sha256Hex: string; now: number }): void {
  stmt(
    db,
    `UPDATE media SET state = 'stored', content = ?, size = ?, mime_type = ?, sha256 = ?, last_error = NULL, updated_at = ? WHERE id = ?`,
  ).run(p.content, p.content.length, p.mimeType, p.sha256Hex, p.now, id);
}

/** Back to `pending`. `refundAttempt`: the failure was not this file's fault (network, token). */
export function markDownloadRetry(db: Database, id: number, p: { nextAttemptAt: number; error: string; now: number; refundAttempt?: boolean }): void {
  stmt(
    db,
    `UPDATE media SET state = 'pending', next_attempt_at = ?, last_error = ?, attempts = attempts - ?, updated_at = ? WHERE id = ?`,
  ).run(p.nextAttemptAt, p.error, p.refundAttempt ? 1 : 0, p.now, id);
}

export function markDownloadFinal(db: Database, id: number, p: { state: 'failed' | 'too_large'; error: string; size: number | null; now: number }): void {
  stmt(db, `UPDATE media SET state = ?, last_error = ?, size = coalesce(?, size), content = NULL, updated_at = ? WHERE id = ?`).run(
    p.state,
    p.error,
    p.size,
    p.now,
    id,
  );
}

/** Staff asked to try a failed download again (before Meta's media id expires, about 30 days). */
export function retryDownload(db: Database, id: number, now: number): boolean {
  return stmt(db, `UPDATE media SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'failed'`).run(now, now, id).changes === 1;
}

export interface MediaInfoRow {
  id: number;
  messageId: number | null;
  mediaId: string | null;
  mimeType: string | null;
  filename: string | null;
  size: number | null;
  state: MediaState;
  lastError: string | null;
}

export function getMediaInfo(db: Database, id: number): MediaInfoRow | null {
  const r = stmt(db, 'SELECT id, message_id, media_id, mime_type, filename, size, state, last_error FROM media WHERE id = ?').get(id) as
    | { id: number; message_id: number | null; media_id: string | null; mime_type: string | null; filename: string | null; size: number | null; state: MediaState; last_error: string | null }
    | undefined;
  return r
    ? { id: r.id, messageId: r.message_id, mediaId: r.media_id, mimeType: r.mime_type, filename: r.filename, size: r.size, state: r.state, lastError: r.last_error }
    : null;
}

/**
 * The bytes of a media row, inline or from its file (`dir`: the files' folder, when `db` is not the
 * live database, e.g. a backup's snapshot); null when it holds none. A file that is missing,
 * truncated, altered, moved from another row or opened with another key throws a `CodedError`:
 * never other bytes than those stored.
 */
export function readMediaBytes(db: Database, id: number, dir?: string): Buffer | null {
  const r = stmt(db, 'SELECT content, file_name, file_key FROM media WHERE id = ?').get(id) as
    | { content: Buffer | null; file_name: string | null; file_key: Buffer | null }
    | undefined;
  if (!r) return null;
  if (r.content !== null) return r.content;
  if (r.file_name === null || r.file_key === null) return null;
  return readMediaFile(dir ?? mediaDirOf(db.name), id, r.file_name, r.file_key);
}

const HAS_BYTES = '(content IS NOT NULL OR file_name IS NOT NULL)';

/** The bytes of a stored media row, for `media.get`; null unless `stored`. */
export function getMediaContent(db: Database, id: number): { mimeType: string; filename: string | null; content: Buffer } | null {
  const r = stmt(db, `SELECT mime_type, filename FROM media WHERE id = ? AND state = 'stored' AND ${HAS_BYTES}`).get(id) as
    | { mime_type: string | null; filename: string | null }
    | undefined;
  const content = r ? readMediaBytes(db, id) : null;
  return r && content ? { mimeType: r.mime_type ?? 'application/octet-stream', filename: r.filename, content } : null;
}

/**
 * An outbound file's row, made with its message so the thread can show it while it goes out.
 * Without `content` the row is `pending` (its bytes follow in `storeOutboundContent`, written off
 * the event loop while the upload runs); such a row is never downloaded, having no Meta media id.
 */
export function insertOutboundMedia(
  db: Database,
  p: { messageId: number; size: number; mimeType: string; filename: string | null; now: number; content?: { bytes: Buffer; sha256Hex: string } },
): number {
  return Number(
    stmt(
      db,
      `INSERT INTO media (media_id, message_id, mime_type, sha256, size, filename, state, content, created_at, updated_at)
       VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(p.messageId, p.mimeType, p.content?.sha256Hex ?? null, p.size, p.filename, p.content ? 'stored' : 'pending', p.content?.bytes ?? null, p.now, p.now)
      .lastInsertRowid,
  );
}

/**
 * The bytes of a `pending` outbound file, with their hash on the media row and in the message's
 * content, in one transaction; from `FILE_THRESHOLD` on, the bytes go first into their own
 * encrypted file (fsynced, with its folder) and the transaction records its name and key. True as
 * well when these bytes are stored already (a write tried again after its thread died); false when
 * the row is gone (the message erased meanwhile). A crash between the file and the commit leaves a
 * file no row names, never a row naming a missing file: `sweepMediaFiles` removes it.
 */
export function storeOutboundContent(db: Database, p: { mediaRowId: number; bytes: Uint8Array; sha256Hex: string; now: number }): boolean {
  if (p.bytes.length < FILE_THRESHOLD) return commitOutbound(db, p, { content: p.bytes }) !== 'gone';
  const before = stmt(db, `SELECT state, ${HAS_BYTES} AS has FROM media WHERE id = ?`).get(p.mediaRowId) as { state: MediaState; has: number } | undefined;
  // Nothing to write for a row erased meanwhile, or stored by an earlier try.
  if (!before || before.state !== 'pending' || before.has === 1) return commitOutbound(db, p, null) !== 'gone';
  const dir = mediaDirOf(db.name);
  const file = writeMediaFile(dir, p.mediaRowId, p.bytes);
  // A commit that threw may still have reached the disk: that file is left to the sweep, which looks at the rows.
  const outcome = commitOutbound(db, p, file);
  if (outcome !== 'written') unlinkMediaFiles(dir, [file.fileName]);
  return outcome !== 'gone';
}

function commitOutbound(db: Database, p: { mediaRowId: number; bytes: Uint8Array; sha256Hex: string; now: number }, bytes: { content: Uint8Array } | StoredFile | null): 'written' | 'already' | 'gone' {
  return db.transaction(() => {
    const stored =
      bytes === null
        ? 0
        : stmt(
            db,
            `UPDATE media SET content = ?, file_name = ?, file_key = ?, sha256 = ?, size = ?, state = 'stored', updated_at = ?
              WHERE id = ? AND state = 'pending' AND content IS NULL AND file_name IS NULL AND media_id IS NULL`,
          ).run('content' in bytes ? bytes.content : null, 'fileName' in bytes ? bytes.fileName : null, 'fileKey' in bytes ? bytes.fileKey : null, p.sha256Hex, p.bytes.length, p.now, p.mediaRowId).changes;
    if (stored !== 1) {
      return stmt(db, `SELECT 1 FROM media WHERE id = ? AND state = 'stored' AND sha256 = ? AND ${HAS_BYTES}`).get(p.mediaRowId, p.sha256Hex) !== undefined ? 'already' : 'gone';
    }
    stmt(
      db,
      `UPDATE messages SET content_json = json_set(content_json, '$.' || type || '.sha256', ?)
        WHERE id = (SELECT message_id FROM media WHERE id = ?) AND direction = 'outbound'`,
    ).run(p.sha256Hex, p.mediaRowId);
    return 'written';
  })();
}

/**
 * Unlinks the files of rows deleted or cleared by committed transactions (`media_file_trash`, filled
 * by trigger in those transactions), then forgets their names. Called after an erasure, after
 * retention and at start; until then such a file is already unreadable (its key went with the row).
 * A file that cannot be removed stays listed for the next call.
 */
export function unlinkDiscardedMediaFiles(db: Database, dir = mediaDirOf(db.name)): number {
  const names = stmt(db, 'SELECT name FROM media_file_trash').pluck().all() as string[];
  if (names.length === 0) return 0;
  const gone = unlinkMediaFiles(dir, names);
  stmt(db, 'DELETE FROM media_file_trash WHERE name IN (SELECT value FROM json_each(?))').run(JSON.stringify(gone));
  return gone.length;
}

/**
 * At start: the discarded files, then any file no row names (older than the sweep's grace). Not
 * the latter while another database of this folder may be put back (a restore's `.before-restore`,
 * `.restore-failed` or staged `.restore` beside the live file): its rows may name those files.
 */
export function sweepMediaFilesAtStart(db: Database, now: number, dir = mediaDirOf(db.name)): number {
  const discarded = unlinkDiscardedMediaFiles(db, dir);
  const live = basename(db.name);
  if (readdirSync(dirname(db.name)).some((name) => name.startsWith(`${live}.`))) return discarded;
  const named = new Set(stmt(db, 'SELECT file_name FROM media WHERE file_name IS NOT NULL').pluck().all() as string[]);
  return discarded + sweepMediaFiles(dir, (name) => named.has(name), now);
}

export function loadOutboundMedia(db: Database, id: number): { content: Buffer; mimeType: string; filename: string | null; uploadedMediaId: string | null } | null {
  const r = stmt(
    db,
    `SELECT x.mime_type, x.filename, coalesce(x.media_id, m.media_id) AS media_id
       FROM media x LEFT JOIN messages m ON m.id = x.message_id WHERE x.id = ? AND (x.content IS NOT NULL OR x.file_name IS NOT NULL)`,
  ).get(id) as { mime_type: string | null; filename: string | null; media_id: string | null } | undefined;
  const content = r ? readMediaBytes(db, id) : null;
  return r && content ? { content, mimeType: r.mime_type ?? 'application/octet-stream', filename: r.filename, uploadedMediaId: r.media_id } : null;
}

/**
 * Records Meta's id for an uploaded file, on its message only. The media row keeps `media_id`
 * NULL (it is found through its message): an UPDATE rewrites the whole row, and with the file in
 * it that meant writing (and, with secure_delete, zeroing) 5 MB again between upload and send.
 */
export function setUploadedMediaId(db: Database, id: number, mediaId: string): void {
  stmt(db, 'UPDATE messages SET media_id = ? WHERE id = (SELECT message_id FROM media WHERE id = ?)').run(mediaId, id);
}

/** The media row a message shows: by Meta's media id (the patient's files), or by its message (the clinic's, see `setUploadedMediaId`). */
export function mediaRowForMessage(db: Database, p: { messageId: number; metaMediaId: string }): Pick<MediaInfoRow, 'id' | 'mimeType' | 'filename' | 'size' | 'state'> | null {
  const r = stmt(
    db,
    `SELECT id, mime_type, filename, size, state FROM media WHERE media_id = @metaMediaId
     UNION ALL SELECT id, mime_type, filename, size, state FROM media WHERE message_id = @messageId AND media_id IS NULL LIMIT 1`,
  ).get({ metaMediaId: p.metaMediaId, messageId: p.messageId }) as { id: number; mime_type: string | null; filename: string | null; size: number | null; state: MediaState } | undefined;
  return r ? { id: r.id, mimeType: r.mime_type, filename: r.filename, size: r.size, state: r.state } : null;
}
