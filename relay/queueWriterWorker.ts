/**
 * The queue writer thread: the only writer of envelopes. It owns its own SQLite connection
 * (WAL, synchronous=FULL) and commits every request that arrived while it was busy in one
 * transaction — seals and inserts, ack deletes, expiry, last-seen updates — so one fsync covers
 * the whole group and the main thread never blocks on the disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { x25519KeyPairFromPrivate, x25519PrivateFromRaw } from './crypto/hpke';
import { createSealer, type PartOutcome } from './intake';
import { ROUTING_CHANGED, type WriterMessage, type WriterRequest, type WriterResponse, type WriterInit } from './queueWriter';
import { routingVersion, claimLease, conflictHeldUntil, deleteEnvelope, expireEnvelopes, openStore, releaseLease, renewLeases, setEnvelopeVersion, touchAppliance, useNonce } from './store';

const WRITER_AUTOCHECKPOINT_PAGES = 16_384;

const init = workerData as WriterInit;
const db = openStore(init.storePath);
const port = parentPort!;

// The checkpointer thread (queueWriter.ts) does this work; the high bound only matters if it fell behind.
db.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_PAGES}`);
startWriter();

function startWriter(): void {
  const sealer = createSealer({
    db,
    relayKeyPair: x25519KeyPairFromPrivate(x25519PrivateFromRaw(Buffer.from(init.relayPrivateKey))),
    dedupKey: Buffer.from(init.dedupKey),
  });
  let pending: WriterRequest[] = [];
  let messages = 0;
  let scheduled = false;
  // The numbers' version as of this transaction: read again only when another connection committed.
  let routing = -1;

  function run(req: WriterRequest): unknown {
    switch (req.t) {
      case 'commit':
        // Under the write lock: no operator's change of the numbers can land between this check and the commit.
        if (req.routingVersion !== null && req.routingVersion !== routing) return ROUTING_CHANGED;
        return sealer.seal(req.parts, req.receivedAt) satisfies PartOutcome[];
      case 'ack':
        return req.seqs.map((seq) => deleteEnvelope(db, req.applianceId, seq) !== undefined);
      case 'expire':
        return [...expireEnvelopes(db, req.before)];
      case 'touch':
        for (const id of req.applianceIds) touchAppliance(db, id, req.at);
        return null;
      case 'upgrade': {
        const fresh = useNonce(db, req.applianceId, req.nonce, req.expiresAt);
        if (fresh && req.envelopeVersion !== undefined) {
          setEnvelopeVersion(db, req.applianceId, req.envelopeVersion);
          sealer.changed();
        }
        return { fresh, conflictUntil: conflictHeldUntil(db, req.applianceId) };
      }
      case 'claim':
        return claimLease(db, req.applianceId, req.holder, req.instance, req.now, req.policy);
      case 'release':
        releaseLease(db, req.applianceId, req.holder);
        return null;
      case 'renew':
        renewLeases(db, req.instance, req.now);
        return null;
      case 'probe':
        // Nothing to do: taking part in the write transaction is the check.
        return null;
    }
  }

  function flush(): void {
    scheduled = false;
    const batch = pending;
    const answered = messages;
    pending = [];
    messages = 0;
    if (batch.length === 0) return;
    let results: unknown[];
    const started = performance.now();
    try {
      results = db
        .transaction(() => {
          if (sealer.begin()) routing = routingVersion(db);
          const out = batch.map(run);
          sealer.finish();
          return out;
        })
        .immediate();
    } catch (err) {
      sealer.reset();
      routing = -1;
      const message = (err as Error).message;
      port.postMessage({ t: 'results', results: batch.map((req) => ({ id: req.id, ok: false as const, message })), messages: answered, commits: 0, seconds: 0 } satisfies WriterResponse);
      return;
    }
    // One message per group, not per request: posting is a measurable share of this thread's time.
    port.postMessage({
      t: 'results',
      results: batch.map((req, i) => ({ id: req.id, ok: true as const, value: results[i] })),
      messages: answered,
      commits: batch.filter((r) => r.t === 'commit').length,
      seconds: (performance.now() - started) / 1000,
    } satisfies WriterResponse);
  }

  port.on('message', (msg: WriterMessage) => {
    if (msg.t === 'close') {
      flush();
      db.close();
      port.close();
      return;
    }
    for (const req of msg.requests) pending.push(req);
    messages += 1;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  port.postMessage({ t: 'ready' } satisfies WriterResponse);
}
