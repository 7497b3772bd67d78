/**
 * The queue writer thread: the only writer of envelopes. It owns its own SQLite connection
 * (WAL, synchronous=FULL) and commits every request that arrived while it was busy in one
 * transaction — seals and inserts, ack deletes, expiry, last-seen updates — so one fsync covers
 * the whole group and the main thread never blocks on the disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { x25519KeyPairFromPrivate, x25519PrivateFromRaw } from './crypto/hpke';
import { createSealer, type PartOutcome } from './intake';
import type { WriterRequest, WriterResponse, WriterInit } from './queueWriter';
import { deleteEnvelope, expireEnvelopes, openStore, touchAppliance } from './store';

const init = workerData as WriterInit;
const db = openStore(init.storePath);
const seal = createSealer({
  db,
  relayKeyPair: x25519KeyPairFromPrivate(x25519PrivateFromRaw(Buffer.from(init.relayPrivateKey))),
  dedupKey: Buffer.from(init.dedupKey),
});
const port = parentPort!;
let pending: WriterRequest[] = [];
let scheduled = false;

function run(req: WriterRequest): unknown {
  switch (req.t) {
    case 'commit':
      return seal(req.parts, req.receivedAt) satisfies PartOutcome[];
    case 'ack':
      return req.seqs.map((seq) => deleteEnvelope(db, req.applianceId, seq) !== undefined);
    case 'expire':
      return [...expireEnvelopes(db, req.before)];
    case 'touch':
      for (const id of req.applianceIds) touchAppliance(db, id, req.at);
      return null;
  }
}

function flush(): void {
  scheduled = false;
  const batch = pending;
  pending = [];
  if (batch.length === 0) return;
  let results: unknown[];
  try {
    results = db.transaction(() => batch.map(run)).immediate();
  } catch (err) {
    const message = (err as Error).message;
    port.postMessage({ t: 'results', results: batch.map((req) => ({ id: req.id, ok: false as const, message })), commits: 0 } satisfies WriterResponse);
    return;
  }
  // One message per group, not per request: posting is a measurable share of this thread's time.
  port.postMessage({
    t: 'results',
    results: batch.map((req, i) => ({ id: req.id, ok: true as const, value: results[i] })),
    commits: batch.filter((r) => r.t === 'commit').length,
  } satisfies WriterResponse);
}

port.on('message', (msg: WriterRequest | { t: 'close' }) => {
  if (msg.t === 'close') {
    flush();
    db.close();
    port.close();
    return;
  }
  pending.push(msg);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
port.postMessage({ t: 'ready' } satisfies WriterResponse);
