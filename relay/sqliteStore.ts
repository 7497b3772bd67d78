/**
 * The embedded store: one SQLite file (WAL, `synchronous=FULL`), one process. Reads run on the
 * main thread's connection (they are microseconds); every write of the serving path — seal and
 * insert, ack deletes, expiry, nonces, leases — goes to the queue writer thread, whose group
 * commits share one fsync and never block the event loop. Operator commands (no sealing secrets)
 * write on the main connection directly.
 */
import { x25519KeyPairFromPrivate, x25519PrivateFromRaw } from './crypto/hpke';
import { createEncapsulator, type PartOutcome } from './intake';
import { createQueueWriter, type QueueWriter } from './queueWriter';
import type { RelayStore, StoreOptions } from './relayStore';
import * as s from './store';

export function migrateSqlite(path: string): { from: number; to: number } {
  const probe = s.openStore(path);
  const to = probe.pragma('user_version', { simple: true }) as number;
  probe.close();
  return { from: to, to };
}

export async function openSqliteStore(path: string, opts: StoreOptions = {}): Promise<RelayStore> {
  const db = s.openStore(path);
  let writer: QueueWriter | null = null;
  let encapsulate: ReturnType<typeof createEncapsulator> | null = null;
  if (opts.sealing) {
    writer = createQueueWriter(
      { storePath: path, relayPrivateKey: opts.sealing.relayPrivateKey, dedupKey: opts.sealing.dedupKey },
      { onBatch: opts.onBatch, onFatal: opts.onFatal },
    );
    // The costly half of HPKE (ephemeral key, two X25519s, key schedule) runs on this thread, in
    // parallel with the writer thread's commits; the writer does the AEAD step that binds the seq.
    // The checkpointer thread checkpoints; a write on this connection (an enrolment, a witness
    // checkpoint) must not run one on the event loop when the WAL has grown past the default 1,000 pages.
    db.pragma('wal_autocheckpoint = 0');
    encapsulate = createEncapsulator({ db, relayKeyPair: x25519KeyPairFromPrivate(x25519PrivateFromRaw(Buffer.from(opts.sealing.relayPrivateKey))) });
    await writer.ready;
  }
  const w = (): QueueWriter => {
    if (!writer) throw new Error('this store was opened without sealing keys (operator mode)');
    return writer;
  };
  const sync = <T>(fn: () => T): Promise<T> => {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
  let closed = false;

  // phone_number_id → tenant, as of routing version `routesVersion`. Without it each webhook's
  // lookup starts a read with a cold page cache (WAL mode drops it after every writer commit). The
  // writer checks the version of every commit under its write lock, so a number an operator moved
  // (from any process) is never committed for its old clinic; unknown numbers are not remembered,
  // so a number just added is never answered 200 and dropped.
  const routes = new Map<string, string>();
  let routesVersion = -1;
  const route = (ids: string[]) => {
    const tenants = new Map<string, string>();
    let misses = false;
    for (const id of ids) {
      const t = routes.get(id);
      if (t === undefined) misses = true;
      else tenants.set(id, t);
    }
    if (!misses && routesVersion >= 0) return { tenants, version: routesVersion };
    db.transaction(() => {
      const v = s.routingVersion(db);
      if (v !== routesVersion) {
        routes.clear();
        tenants.clear();
        routesVersion = v;
      }
      for (const id of ids) {
        if (tenants.has(id)) continue;
        const t = s.tenantForPhoneNumber(db, id);
        if (!t) continue;
        tenants.set(id, t);
        if (routes.size < 100_000) routes.set(id, t);
      }
    })();
    return { tenants, version: routesVersion };
  };

  return {
    kind: 'sqlite',
    shared: false,
    createTenant: (args) => sync(() => s.createTenant(db, args)),
    getTenant: (id) => sync(() => s.getTenant(db, id)),
    addPhoneNumber: (tenantId, p, now) => sync(() => s.addPhoneNumber(db, tenantId, p, now)),
    removePhoneNumber: (p) => sync(() => s.removePhoneNumber(db, p)),
    phoneNumbersOf: (tenantId) => sync(() => s.phoneNumbersOf(db, tenantId)),
    tenantsForPhoneNumbers: (ids) =>
      sync(() => {
        const out = new Map<string, string>();
        for (const id of ids) {
          const t = s.tenantForPhoneNumber(db, id);
          if (t) out.set(id, t);
        }
        return out;
      }),
    route: (ids) => sync(() => route(ids)),
    issueEnrolmentCode: (args) => sync(() => s.issueEnrolmentCode(db, args)),
    redeemEnrolmentCode: (args) => sync(() => s.redeemEnrolmentCode(db, args)),
    getAppliance: (id) => sync(() => s.getAppliance(db, id)),
    activeAppliances: () => sync(() => s.activeAppliances(db)),
    revokeAppliance: (id, now, reason) => sync(() => s.revokeAppliance(db, id, now, reason)),
    revokedAmong: (ids) => sync(() => s.revokedAmong(db, ids)),
    listTenants: () => sync(() => s.listTenants(db)),

    async commit(parts, receivedAt, routingVersion = null) {
      for (const part of parts) {
        try {
          part.encapsulation = encapsulate?.prepare(part.tenantId);
        } catch {
          // Left to the writer, which tries again and answers `unsealable` for this part alone.
          part.encapsulation = undefined;
        }
      }
      let outcomes: PartOutcome[];
      try {
        outcomes = await w().commit(parts, receivedAt, routingVersion);
      } catch (err) {
        // The next route() reads the version (and the numbers) again.
        if (err instanceof s.RoutingChanged) routesVersion = -1;
        throw err;
      }
      encapsulate?.learn(outcomes);
      return outcomes;
    },
    envelopesAfter: (id, after, limit) => sync(() => s.envelopesAfter(db, id, after, limit)),
    queueHeads: (ids) =>
      sync(() => {
        const out = new Map<string, number>();
        for (const id of ids) {
          const row = db.prepare('SELECT max(seq) AS seq FROM envelopes WHERE appliance_id = ?').get(id) as { seq: number | null };
          if (row.seq !== null) out.set(id, row.seq);
        }
        return out;
      }),
    ack: (id, seqs) => (writer ? writer.ack(id, seqs) : sync(() => seqs.map((q) => s.deleteEnvelope(db, id, q) !== undefined))),
    backlogOf: (id) => sync(() => s.backlogOf(db, id)),
    queueByTenant: () => sync(() => s.queueByTenant(db)),
    queued: (tenantId) =>
      sync(
        () =>
          (tenantId
            ? (db.prepare('SELECT count(*) AS n FROM envelopes WHERE tenant_id = ?').get(tenantId) as { n: number })
            : (db.prepare('SELECT count(*) AS n FROM envelopes').get() as { n: number })
          ).n,
      ),
    expire: (before) => (writer ? writer.expire(before) : sync(() => [...s.expireEnvelopes(db, before)])),
    touch(ids, at) {
      if (writer) writer.touch(ids, at);
      else for (const id of ids) s.touchAppliance(db, id, at);
    },
    latestCheckpoint: (id) => sync(() => s.latestCheckpoint(db, id)),
    saveCheckpoint: (row) => sync(() => s.saveCheckpoint(db, row)),
    checkUpgrade: (id, nonce, expiresAt, _now, envelopeVersion) =>
      writer
        ? writer.upgrade(id, nonce, expiresAt, envelopeVersion)
        : sync(() => {
            const fresh = s.useNonce(db, id, nonce, expiresAt);
            if (fresh && envelopeVersion !== undefined) s.setEnvelopeVersion(db, id, envelopeVersion);
            return { fresh, conflictUntil: s.conflictHeldUntil(db, id) };
          }),
    claimLease: (id, holder, instance, now, policy) =>
      writer ? writer.claim(id, holder, instance, now, policy) : sync(() => s.claimLease(db, id, holder, instance, now, policy)),
    releaseLease: (id, holder) => (writer ? writer.release(id, holder) : sync(() => s.releaseLease(db, id, holder))),
    renewLeases: (instance, now) => (writer ? writer.renew(instance, now) : sync(() => s.renewLeases(db, instance, now))),
    leaseHolders: (ids) => sync(() => s.leaseHolders(db, ids)),
    onSignal: () => undefined,
    async probe() {
      db.prepare('SELECT count(*) FROM tenants').get();
      if (writer) await writer.probe();
    },
    healthy: () => writer?.healthy() ?? true,
    async close() {
      if (closed) return;
      closed = true;
      await writer?.close();
      db.close();
    },
  };
}
