import type { Database } from './types';

/**
 * Keeps SQLite's automatic WAL checkpoint off the receptionist's path while a large file is being
 * sent. A 5 MB image is 1,280 pages, more than the default `wal_autocheckpoint` (1,000 pages), so
 * the commit that stored it also copied the whole WAL into the database file (and fsynced it):
 * 250-350 ms of a 5 MB send on this machine, before the upload could start. While a hold is in
 * place the connection checkpoints nothing by itself; when the last hold is released (the file
 * is sent, or failed, or `maxMs` passed) the setting comes back and one PASSIVE checkpoint runs on
 * the next turn of the event loop, after the tick went out. Holds are per connection, in memory:
 * a restart starts with the default, so a crash cannot leave checkpoints off.
 */

interface Holds {
  keys: Map<string, NodeJS.Timeout>;
  saved: number;
}

const holds = new WeakMap<Database, Holds>();

export function holdCheckpoints(db: Database, key: string, maxMs = 60_000): void {
  let h = holds.get(db);
  if (!h) {
    h = { keys: new Map(), saved: db.pragma('wal_autocheckpoint', { simple: true }) as number };
    holds.set(db, h);
    db.pragma('wal_autocheckpoint = 0');
  }
  clearTimeout(h.keys.get(key));
  const timer = setTimeout(() => releaseCheckpoints(db, key), maxMs);
  timer.unref();
  h.keys.set(key, timer);
}

export function releaseCheckpoints(db: Database, key: string): void {
  const h = holds.get(db);
  const timer = h?.keys.get(key);
  if (!h || timer === undefined) return;
  clearTimeout(timer);
  h.keys.delete(key);
  if (h.keys.size > 0) return;
  holds.delete(db);
  if (!db.open) return;
  db.pragma(`wal_autocheckpoint = ${h.saved}`);
  setImmediate(() => {
    if (!db.open || holds.has(db)) return;
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // A reader holds the WAL: the next automatic checkpoint does it.
    }
  });
}

/** The hold a queued file's send keeps until it is settled. */
export const mediaSendHold = (mediaRowId: number) => `media-send:${mediaRowId}`;
