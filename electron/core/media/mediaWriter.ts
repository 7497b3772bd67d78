// The writer thread of the clinic's outgoing files: one connection of its own to the encrypted
// database, so encrypting a file (a large one into its own AES-256-GCM file, `fileStore.ts`, then
// a small commit of its name and key; a small one into the database's pages) and waiting for the
// disk to hold it happen beside the core's event loop, which meanwhile uploads the same bytes.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { openWorkerConnection } from '../db/cipher';
import { storeOutboundContent } from '../db/repo/media';

export interface MediaWriterData {
  databasePath: string;
  /** Hex; the database key, as the other worker threads receive it. */
  databaseKey: string;
}

/**
 * `hash`: a file's bytes ahead of its row (the hash runs while the core commits the message);
 * `store`: commit them into the row (with the bytes again: shared memory, no copy, and a thread
 * started anew has no hash kept); `drop`: the message was refused, forget the hash.
 */
export type ToWriter =
  | { kind: 'hash'; id: number; bytes: Uint8Array }
  | { kind: 'store'; id: number; mediaRowId: number; bytes: Uint8Array; now: number }
  | { kind: 'drop'; id: number };

/** `stored` false: the row is gone (erased meanwhile). `error`: the error's class only (its message may quote data). */
export type FromWriter = { id: number; stored: boolean } | { id: number; error: string };

const data = workerData as MediaWriterData;
const port = parentPort!;
// The core answers "sent" only after this commit: it must be on the disk, as every state change.
const db = openWorkerConnection(data.databasePath, data.databaseKey, 'FULL');
// Never checkpoint here: a 5 MB commit would copy the whole WAL into the database file before the
// answer (see db/checkpoints.ts); the core's connection checkpoints once the file has been sent.
db.pragma('wal_autocheckpoint = 0');
const hashes = new Map<number, string>();
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

port.on('message', (m: ToWriter) => {
  if (m.kind === 'hash') {
    hashes.set(m.id, sha256(m.bytes));
    return;
  }
  const sha256Hex = hashes.get(m.id);
  hashes.delete(m.id);
  if (m.kind === 'drop') return;
  let answer: FromWriter;
  try {
    answer = { id: m.id, stored: storeOutboundContent(db, { mediaRowId: m.mediaRowId, bytes: m.bytes, sha256Hex: sha256Hex ?? sha256(m.bytes), now: m.now }) };
  } catch (err) {
    answer = { id: m.id, error: err instanceof Error ? err.name : typeof err };
  }
  port.postMessage(answer);
});
