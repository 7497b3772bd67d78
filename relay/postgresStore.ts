/**
 * The shared store: PostgreSQL, for several relay instances behind a load balancer. A webhook's
 * transaction (dedup keys, seal, insert) commits with `synchronous_commit = on` before the instance
 * answers 200. Seqs are reserved just before, in a short transaction of their own that leaves a
 * claim row; the reader delivers nothing at or past an appliance's oldest claim, so an envelope
 * whose seq commits late is still delivered in seq order (see `commitGroup`). Instances learn of
 * each other's envelopes and lease moves through `LISTEN/NOTIFY` (not durable: the delivery hub
 * also runs a catch-up query). Times are ms since epoch (bigint).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { x25519KeyPairFromPrivate, x25519PrivateFromRaw } from './crypto/hpke';
import { createDedupHasher, createRecipients, sealPart, type PartOutcome, type TenantPart } from './intake';
import type { RelayStore, StoreOptions, StoreSignal } from './relayStore';
import {
  decideLease,
  hashEnrolmentCode,
  newEnrolmentCode,
  newId,
  PHONE_NUMBER_ID_RE,
  PHONE_NUMBER_ID_RULE,
  replaceNeeded,
  StoreConflict,
  StoreInputError,
  type ApplianceRow,
  type CheckpointRow,
  type EnrolResult,
  type IssuedCode,
  type LeaseRow,
  type TenantSummary,
} from './store';

/** Versioned migrations; `npm run relay -- migrate` applies the pending ones in order. */
export const PG_MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE tenants (id text PRIMARY KEY, label text, created_at bigint NOT NULL);
      CREATE TABLE phone_numbers (
        phone_number_id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        added_at bigint NOT NULL
      );
      CREATE INDEX phone_numbers_tenant ON phone_numbers(tenant_id);
      CREATE TABLE appliances (
        id text PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        signing_public_key bytea NOT NULL,
        encryption_public_key bytea NOT NULL,
        label text,
        enrolled_at bigint NOT NULL,
        revoked_at bigint,
        revoked_reason text,
        next_seq bigint NOT NULL DEFAULT 1,
        last_seen_at bigint,
        envelope_version integer NOT NULL DEFAULT 1
      );
      CREATE UNIQUE INDEX appliances_one_active ON appliances(tenant_id) WHERE revoked_at IS NULL;
      CREATE INDEX appliances_revoked ON appliances(id) WHERE revoked_at IS NOT NULL;
      CREATE TABLE enrolment_codes (
        code_hash bytea PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        issued_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        used_at bigint,
        appliance_id text,
        replaces_appliance_id text,
        voided_at bigint
      );
      CREATE TABLE envelopes (
        appliance_id text NOT NULL,
        seq bigint NOT NULL,
        tenant_id text NOT NULL,
        received_at bigint NOT NULL,
        enc bytea NOT NULL,
        ct bytea NOT NULL,
        epoch text,
        PRIMARY KEY (appliance_id, seq)
      );
      CREATE INDEX envelopes_received ON envelopes(received_at);
      CREATE INDEX envelopes_tenant ON envelopes(tenant_id, received_at);
      CREATE TABLE dedup (key_hash bytea PRIMARY KEY, seen_at bigint NOT NULL);
      CREATE INDEX dedup_seen ON dedup(seen_at);
      CREATE TABLE checkpoints (
        appliance_id text PRIMARY KEY,
        seq bigint NOT NULL,
        head_hash text NOT NULL,
        at bigint NOT NULL,
        signature text NOT NULL,
        received_at bigint NOT NULL
      );
      CREATE TABLE upgrade_nonces (
        appliance_id text NOT NULL,
        nonce text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (appliance_id, nonce)
      );
      CREATE INDEX upgrade_nonces_expiry ON upgrade_nonces(expires_at);
      CREATE TABLE connection_leases (
        appliance_id text PRIMARY KEY,
        holder text,
        instance text,
        renewed_at bigint NOT NULL DEFAULT 0,
        takeovers bigint[] NOT NULL DEFAULT '{}',
        conflict_until bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX connection_leases_instance ON connection_leases(instance);
    `,
  },
  {
    // Seqs reserved by a group whose envelopes are not committed yet: the reader stops at the
    // oldest. `lock_key` is the transaction-level advisory lock the group's transaction holds, so a
    // claim whose transaction ended without deleting it (a rollback, a killed instance) is known
    // to be abandoned by anyone who can take that lock.
    version: 2,
    sql: `
      CREATE TABLE seq_claims (
        appliance_id text NOT NULL,
        first_seq bigint NOT NULL,
        lock_key bigint NOT NULL,
        PRIMARY KEY (appliance_id, first_seq)
      );
    `,
  },
];
export const PG_SCHEMA_VERSION = PG_MIGRATIONS.at(-1)!.version;

const ENVELOPES_CHANNEL = 'relay_envelopes';
/** Webhooks per group commit at most (a bigger backlog waits for the next group). */
const MAX_GROUP = 64;
/** Group transactions of one instance in flight at once (each holds a pool connection). */
const MAX_GROUPS_IN_FLIGHT = 4;
/** How often abandoned seq claims (their group rolled back or its instance died) are swept. */
const CLAIM_SWEEP_MS = 1_000;
const LEASES_CHANNEL = 'relay_leases';
/** A number was added, moved or removed: instances drop their routing memory. */
const ROUTING_CHANNEL = 'relay_routing';
/** Routing memory is dropped this often anyway (a change made by hand in the database). */
const ROUTES_MAX_AGE_MS = 5_000;
/** Any constant: migrations of concurrent instances (or operators) run one at a time. */
const MIGRATION_LOCK = 0x72656c61;

/** int8 as a JS number: every bigint here is a ms timestamp, a count or a seq (< 2^53). */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : oid === 1016 ? (v: string) => (v === '{}' ? [] : v.slice(1, -1).split(',').map(Number)) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function clientConfig(url: string, statementTimeoutMs: number): pg.ClientConfig {
  return {
    connectionString: url,
    types,
    // A statement (a commit included) that takes longer fails and the webhook gets 503.
    statement_timeout: statementTimeoutMs,
    // A server that stopped answering (no RST) fails the query too, not only a closed one.
    query_timeout: statementTimeoutMs + 1_000,
    connectionTimeoutMillis: Math.min(5_000, statementTimeoutMs),
    application_name: 'clinic-relay',
    keepAlive: true,
  };
}

export async function migratePostgres(url: string): Promise<{ from: number; to: number }> {
  const client = new pg.Client(clientConfig(url, 60_000));
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const from = rows[0]?.v ?? 0;
    if (from > PG_SCHEMA_VERSION) throw new Error(`relay database is schema ${from}, newer than this relay (${PG_SCHEMA_VERSION}); upgrade the relay`);
    for (const m of PG_MIGRATIONS) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
    }
    await client.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

async function schemaVersion(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!rows[0]?.t) return 0;
  return (await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
}

export async function openPostgresStore(url: string, opts: StoreOptions = {}): Promise<RelayStore> {
  const statementTimeoutMs = opts.statementTimeoutMs ?? 5_000;
  const pool = new pg.Pool({ ...clientConfig(url, statementTimeoutMs), max: opts.poolSize ?? 10, idleTimeoutMillis: 30_000 });
  // An idle connection the server dropped (a restart, a failover) is an event, not a crash.
  pool.on('error', () => undefined);
  const version = await schemaVersion(pool).catch(async (err: Error) => {
    await pool.end();
    throw new Error(`cannot reach the relay database: ${err.message}`);
  });
  if (version !== PG_SCHEMA_VERSION) {
    await pool.end();
    throw new Error(
      version < PG_SCHEMA_VERSION
        ? `relay database is at schema ${version}, this relay needs ${PG_SCHEMA_VERSION}: run \`npm run relay -- migrate\` first`
        : `relay database is schema ${version}, newer than this relay (${PG_SCHEMA_VERSION}); upgrade the relay`,
    );
  }

  const relayKeyPair = opts.sealing ? x25519KeyPairFromPrivate(x25519PrivateFromRaw(Buffer.from(opts.sealing.relayPrivateKey))) : null;
  const prepare = relayKeyPair ? createRecipients(relayKeyPair) : null;
  const dedupHash = opts.sealing ? createDedupHasher(opts.sealing.dedupKey) : null;
  let alive = true;

  // A checked-out connection that the server drops (a crash, a failover) emits 'error'; without a
  // listener that would end the process. The query in flight fails, and that answers 503.
  const guarded = new WeakSet<pg.PoolClient>();
  async function tx<T>(fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const client = await pool.connect();
    if (!guarded.has(client)) {
      guarded.add(client);
      client.on('error', () => undefined);
    }
    try {
      await client.query(begin);
      const out = await fn(client);
      await client.query('COMMIT');
      client.release();
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A connection that failed mid-transaction is not trusted again.
      client.release(err as Error);
      throw err;
    }
  }
  const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], c: pg.Pool | pg.PoolClient = pool) => (await c.query<T>(sql, params)).rows;

  const checkPhone = (p: string) => {
    if (!PHONE_NUMBER_ID_RE.test(p)) throw new StoreInputError(PHONE_NUMBER_ID_RULE);
  };
  const addPhone = async (c: pg.PoolClient, tenantId: string, p: string, now: number) => {
    checkPhone(p);
    const owner = (await q<{ tenant_id: string }>('SELECT tenant_id FROM phone_numbers WHERE phone_number_id = $1', [p], c))[0]?.tenant_id;
    if (owner && owner !== tenantId) throw new StoreConflict(`phone_number_id ${p} already belongs to tenant ${owner}`);
    if (!owner) await c.query('INSERT INTO phone_numbers (phone_number_id, tenant_id, added_at) VALUES ($1, $2, $3)', [p, tenantId, now]);
  };
  const activeOf = async (c: pg.Pool | pg.PoolClient, tenantId: string) =>
    (await q<ApplianceRow>('SELECT * FROM appliances WHERE tenant_id = $1 AND revoked_at IS NULL', [tenantId], c))[0];
  const revoke = async (c: pg.PoolClient, id: string, now: number, reason: string) => {
    const r = await c.query('UPDATE appliances SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL', [id, now, reason]);
    if (r.rowCount === 0) return 0;
    // A group that reserved seqs before this may still be inserting its envelopes: wait for its
    // transaction (its claim's lock) so they are dropped with the rest. Later groups find the row
    // revoked.
    await c.query('SELECT pg_advisory_xact_lock_shared(lock_key) FROM seq_claims WHERE appliance_id = $1', [id]);
    return (await c.query('DELETE FROM envelopes WHERE appliance_id = $1', [id])).rowCount ?? 0;
  };

  // --- LISTEN/NOTIFY -------------------------------------------------------------------------
  const listeners: ((s: StoreSignal) => void)[] = [];
  const emit = (s: StoreSignal) => {
    for (const l of listeners) l(s);
  };
  let listenClient: pg.Client | null = null;
  // phone_number_id → tenant (null: not ours), remembered between webhooks so a webhook does not
  // pay a round trip for its routing; trusted only while this instance hears routing changes.
  const routes = new Map<string, string | null>();
  let routesSince = Date.now();
  const notifyRouting = (c: pg.PoolClient) => c.query(`SELECT pg_notify('${ROUTING_CHANNEL}', 'changed')`);
  let listenTimer: NodeJS.Timeout | null = null;
  let listenedOnce = false;
  const listen = async () => {
    listenTimer = null;
    if (!alive) return;
    const client = new pg.Client({ ...clientConfig(url, statementTimeoutMs), query_timeout: undefined });
    const retry = () => {
      if (listenClient === client) listenClient = null;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (alive && !listenTimer) listenTimer = setTimeout(() => void listen(), 1_000);
    };
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', (n) => {
      if (n.channel === ROUTING_CHANNEL) return routes.clear();
      if (!n.payload) return;
      emit({ kind: n.channel === LEASES_CHANNEL ? 'lease' : 'envelopes', applianceId: n.payload });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${ENVELOPES_CHANNEL}; LISTEN ${LEASES_CHANNEL}; LISTEN ${ROUTING_CHANNEL}`);
      routes.clear();
      listenClient = client;
      if (listenedOnce) emit({ kind: 'resync' });
      listenedOnce = true;
    } catch {
      retry();
    }
  };
  await listen();

  // Seq reservations and notifications run here: each commits without waiting for the WAL flush
  // (`synchronous_commit = off` for these sessions only), so the appliance's row lock is held for
  // one statement, and a notification takes PostgreSQL's database-wide notify lock for a moment
  // rather than through a flush. Neither weakens what a 200 means: a reservation is in the WAL
  // before the envelope commit that uses it, whose flush (and synchronous standby) covers it; a
  // reservation lost in a crash was used by no committed envelope. A lost notification is found
  // by the catch-up query.
  const fastPool = new pg.Pool({ ...clientConfig(url, statementTimeoutMs), options: '-c synchronous_commit=off', max: 3, idleTimeoutMillis: 30_000 });
  fastPool.on('error', () => undefined);
  const announce = (applianceIds: string[]) =>
    fastPool.query(`SELECT pg_notify('${ENVELOPES_CHANNEL}', a) FROM unnest($1::text[]) AS a`, [applianceIds]).catch(() => undefined);

  // A claim whose transaction ended without deleting it (rolled back, or its instance or
  // connection died) holds back its appliance's later envelopes: delete it once its lock is free,
  // and wake the reader. A live group holds its lock, so its claim stays.
  let sweeping: Promise<unknown> | null = null;
  const sweepClaims = () =>
    (sweeping ??= fastPool
      .query(
        `WITH d AS (DELETE FROM seq_claims WHERE pg_try_advisory_xact_lock_shared(lock_key) RETURNING appliance_id)
         SELECT pg_notify('${ENVELOPES_CHANNEL}', a) FROM (SELECT DISTINCT appliance_id AS a FROM d) AS x`,
      )
      .catch(() => undefined)
      .finally(() => {
        sweeping = null;
      }));
  const sweepTimer = setInterval(() => void sweepClaims(), CLAIM_SWEEP_MS);
  sweepTimer.unref();

  // Group commit: webhooks that arrive while transactions are in flight go into the next one, so
  // they share its round trips and its commit (one WAL flush for the group). A few groups may be
  // in flight at once (no lock is held across a commit), leaving the rest of the pool to
  // deliveries, acks and housekeeping.
  const maxGroupsInFlight = Math.max(1, Math.min(MAX_GROUPS_IN_FLIGHT, (opts.poolSize ?? 10) - 2));
  interface Pending {
    parts: TenantPart[];
    receivedAt: number;
    resolve: (outcomes: PartOutcome[]) => void;
    reject: (err: Error) => void;
  }
  let pending: Pending[] = [];
  let inFlight = 0;
  const kick = () => {
    if (inFlight >= maxGroupsInFlight || pending.length === 0) return;
    inFlight += 1;
    const batch = pending.slice(0, MAX_GROUP);
    pending = pending.slice(MAX_GROUP);
    const started = performance.now();
    commitGroup(batch).then(
      (results) => {
        opts.onBatch?.(batch.length, (performance.now() - started) / 1000);
        batch.forEach((p, i) => p.resolve(results[i]!));
      },
      (err: Error) => batch.forEach((p) => p.reject(err)),
    ).finally(() => {
      inFlight -= 1;
      kick();
    });
  };

  /**
   * Seals and queues every part of every webhook of the group in one transaction, whatever the
   * group's size: claim the dedup keys, reserve the seqs (on `fastPool`, its own transaction),
   * insert the envelopes and delete the claims, commit; then notify. Groups of several instances
   * for one clinic commit in parallel, so seq order is no longer commit order: the reservation
   * leaves a claim row, visible before any later group's envelopes, and `envelopesAfter` returns
   * nothing at or past an appliance's oldest claim. Envelopes and the claim's deletion commit
   * together, so a reader sees both or neither. The transaction holds an advisory lock on the
   * claim's key from its first statement, which is how a sweep tells an abandoned claim from a
   * slow one; a transaction whose claim was swept anyway rolls back (503, Meta retries).
   */
  const commitGroup = async (batch: Pending[]) => {
    // Random, so no two groups in flight share it (a collision would only make one wait).
    const lockKey = randomBytes(8).readBigInt64BE().toString();
    let reserved = false;
    try {
      const { results, notify } = await tx(async (c) => {
        const results = batch.map((p) => new Array<PartOutcome>(p.parts.length));
        const items = batch.flatMap((p, w) =>
          p.parts.map((part, i) => ({ w, i, part, receivedAt: p.receivedAt, keys: part.items.map((item) => dedupHash!(part.tenantId, item)) })),
        );
        // 1. Claim every dedup key at once. A key another transaction is inserting makes this one
        //    wait for it (the unique index), so a retry arriving at two instances together is kept
        //    once; keys go in in sorted order, so two groups never wait on each other in a circle.
        const keyAt = new Map<string, { key: Buffer; seenAt: number }>();
        for (const it of items) for (const key of it.keys) if (!keyAt.has(key.toString('hex'))) keyAt.set(key.toString('hex'), { key, seenAt: it.receivedAt });
        const fresh = new Set(
          (
            await q<{ k: Buffer }>(
              `INSERT INTO dedup (key_hash, seen_at) SELECT k, s FROM unnest($1::bytea[], $2::bigint[]) AS u(k, s) ORDER BY k
               ON CONFLICT DO NOTHING RETURNING key_hash AS k`,
              [[...keyAt.values()].map((v) => v.key), [...keyAt.values()].map((v) => v.seenAt)],
              c,
            )
          ).map((r) => r.k.toString('hex')),
        );
        // A part is new if one of its keys is new to the database and not already credited to an
        // earlier part of this group (a retry inside one group); the rest are duplicates.
        const queued: typeof items = [];
        for (const it of items) {
          let isNew = false;
          for (const key of it.keys) isNew = fresh.delete(key.toString('hex')) || isNew;
          if (isNew) queued.push(it);
          else results[it.w]![it.i] = { tenantId: it.part.tenantId, outcome: 'duplicate' };
        }
        if (queued.length === 0) return { results, notify: [] };
        // 2. Reserve each tenant's seqs and leave the claims, locking the appliance rows (in
        //    tenant order) for this one short transaction only.
        const wanted = new Map<string, number>();
        for (const it of queued) wanted.set(it.part.tenantId, (wanted.get(it.part.tenantId) ?? 0) + 1);
        const tenants = [...wanted.keys()].sort();
        reserved = true;
        const appliances = new Map(
          (
            await q<{ id: string; tenant_id: string; encryption_public_key: Buffer; envelope_version: number; first: number }>(
              `WITH want AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS w(tenant_id, n)),
                    locked AS MATERIALIZED (SELECT a.id FROM appliances a JOIN want USING (tenant_id) WHERE a.revoked_at IS NULL ORDER BY a.tenant_id FOR UPDATE OF a),
                    taken AS (UPDATE appliances a SET next_seq = a.next_seq + want.n FROM want, locked WHERE a.id = locked.id AND a.tenant_id = want.tenant_id
                              RETURNING a.id, a.tenant_id, a.encryption_public_key, a.envelope_version, a.next_seq - want.n AS first),
                    claimed AS (INSERT INTO seq_claims (appliance_id, first_seq, lock_key) SELECT id, first, $3 FROM taken)
               SELECT * FROM taken`,
              [tenants, tenants.map((t) => wanted.get(t)!), lockKey],
              fastPool,
            )
          ).map((a) => [a.tenant_id, a]),
        );
        // 3. Seal (the AEAD binds the seq), in arrival order within each tenant.
        const rows: { appliance_id: string; seq: number; tenant_id: string; received_at: number; enc: Buffer; ct: Buffer; epoch: string | null }[] = [];
        const forget: Buffer[] = [];
        for (const it of queued) {
          const tenantId = it.part.tenantId;
          const appliance = appliances.get(tenantId);
          if (!appliance) {
            results[it.w]![it.i] = { tenantId, outcome: 'no_appliance' };
            forget.push(...it.keys);
            continue;
          }
          const seq = appliance.first;
          appliance.first += 1;
          try {
            rows.push({ appliance_id: appliance.id, seq, tenant_id: tenantId, received_at: it.receivedAt, ...sealPart(prepare!(appliance), it.part, seq, it.receivedAt) });
          } catch {
            results[it.w]![it.i] = { tenantId, outcome: 'unsealable', applianceId: appliance.id };
            forget.push(...it.keys);
            continue;
          }
          results[it.w]![it.i] = { tenantId, outcome: 'queued', applianceId: appliance.id, seq, version: appliance.envelope_version === 2 ? 2 : 1 };
        }
        // A part that waits for Meta's retry must not be recognised as seen when it comes.
        if (forget.length > 0) await c.query('DELETE FROM dedup WHERE key_hash = ANY($1::bytea[])', [forget]);
        if (appliances.size === 0) return { results, notify: [] };
        // 4. Insert every envelope and delete this group's claims, in one statement.
        const ids = [...appliances.values()].map((a) => a.id);
        const released = (
          await q<{ n: number }>(
            `WITH e AS (INSERT INTO envelopes (appliance_id, seq, tenant_id, received_at, enc, ct, epoch)
                        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[], $6::bytea[], $7::text[])),
                  d AS (DELETE FROM seq_claims WHERE appliance_id = ANY($8::text[]) AND lock_key = $9 RETURNING 1)
             SELECT count(*)::int AS n FROM d`,
            [
              rows.map((r) => r.appliance_id),
              rows.map((r) => r.seq),
              rows.map((r) => r.tenant_id),
              rows.map((r) => r.received_at),
              rows.map((r) => r.enc),
              rows.map((r) => r.ct),
              rows.map((r) => r.epoch),
              ids,
              lockKey,
            ],
            c,
          )
        )[0]!.n;
        // Swept as abandoned (this transaction's connection looked dead): a reader may have moved
        // past these seqs, so they must not commit.
        if (released !== ids.length) throw new Error('the seq claim of this commit group was swept; the group is rolled back');
        return { results, notify: rows.length > 0 ? [...new Set(rows.map((r) => r.appliance_id))] : [] };
      }, `BEGIN; SELECT pg_advisory_xact_lock(${lockKey})`);
      // The instance holding the socket learns of the envelopes (this one is told by the caller).
      if (notify.length > 0) void announce(notify);
      return results;
    } catch (err) {
      // The rollback released the claim's lock: sweep it now rather than hold the reader back.
      if (reserved) void sweepClaims();
      throw err;
    }
  };

  const store: RelayStore = {
    kind: 'postgres',
    shared: true,
    createTenant: (args) =>
      tx(async (c) => {
        for (const p of args.phoneNumberIds) checkPhone(p);
        await c.query('INSERT INTO tenants (id, label, created_at) VALUES ($1, $2, $3)', [args.id, args.label ?? null, args.now]);
        for (const p of args.phoneNumberIds) await addPhone(c, args.id, p, args.now);
        await notifyRouting(c);
        return { id: args.id, label: args.label ?? null, created_at: args.now };
      }),
    getTenant: async (id) => (await q<{ id: string; label: string | null; created_at: number }>('SELECT id, label, created_at FROM tenants WHERE id = $1', [id]))[0],
    addPhoneNumber: (tenantId, p, now) =>
      tx(async (c) => {
        await addPhone(c, tenantId, p, now);
        await notifyRouting(c);
      }),
    removePhoneNumber: (p) =>
      tx(async (c) => {
        const removed = ((await c.query('DELETE FROM phone_numbers WHERE phone_number_id = $1', [p])).rowCount ?? 0) === 1;
        await notifyRouting(c);
        return removed;
      }),
    phoneNumbersOf: async (tenantId) =>
      (await q<{ phone_number_id: string }>('SELECT phone_number_id FROM phone_numbers WHERE tenant_id = $1 ORDER BY phone_number_id', [tenantId])).map(
        (r) => r.phone_number_id,
      ),
    route: async (ids) => ({ tenants: await store.tenantsForPhoneNumbers(ids), version: null }),
    async tenantsForPhoneNumbers(ids) {
      const out = new Map<string, string>();
      if (ids.length === 0) return out;
      if (!listenClient || routes.size > 10_000 || Date.now() - routesSince > ROUTES_MAX_AGE_MS) {
        routes.clear();
        routesSince = Date.now();
      }
      const unknown = ids.filter((id) => !routes.has(id));
      if (unknown.length > 0) {
        const found = new Map<string, string>();
        for (const r of await q<{ phone_number_id: string; tenant_id: string }>(
          'SELECT phone_number_id, tenant_id FROM phone_numbers WHERE phone_number_id = ANY($1)',
          [unknown],
        )) {
          found.set(r.phone_number_id, r.tenant_id);
        }
        if (listenClient) for (const id of unknown) routes.set(id, found.get(id) ?? null);
        for (const [id, tenant] of found) out.set(id, tenant);
      }
      for (const id of ids) {
        const tenant = routes.get(id);
        if (tenant) out.set(id, tenant);
      }
      return out;
    },
    issueEnrolmentCode: (args) =>
      tx(async (c): Promise<IssuedCode> => {
        if (!(await q('SELECT 1 FROM tenants WHERE id = $1', [args.tenantId], c))[0]) throw new StoreConflict(`no tenant ${args.tenantId}`);
        const active = await activeOf(c, args.tenantId);
        const queuedEnvelopes = active ? (await q<{ n: number }>('SELECT count(*) AS n FROM envelopes WHERE appliance_id = $1', [active.id], c))[0]!.n : 0;
        if (active && !args.replace) throw replaceNeeded(args.tenantId, active.id, queuedEnvelopes);
        const voided =
          (await c.query('UPDATE enrolment_codes SET voided_at = $1 WHERE tenant_id = $2 AND used_at IS NULL AND voided_at IS NULL', [args.now, args.tenantId]))
            .rowCount ?? 0;
        const code = newEnrolmentCode();
        const expiresAt = args.now + args.ttlMs;
        await c.query('INSERT INTO enrolment_codes (code_hash, tenant_id, issued_at, expires_at, replaces_appliance_id) VALUES ($1, $2, $3, $4, $5)', [
          hashEnrolmentCode(code),
          args.tenantId,
          args.now,
          expiresAt,
          active?.id ?? null,
        ]);
        return { code, expiresAt, voidedCodes: voided, replaces: active ? { applianceId: active.id, queuedEnvelopes } : null };
      }),
    redeemEnrolmentCode: (args) =>
      tx(async (c): Promise<EnrolResult | null> => {
        const hash = hashEnrolmentCode(args.code);
        const row = (
          await q<{ tenant_id: string; replaces_appliance_id: string | null }>(
            'SELECT tenant_id, replaces_appliance_id FROM enrolment_codes WHERE code_hash = $1 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $2 FOR UPDATE',
            [hash, args.now],
            c,
          )
        )[0];
        if (!row) return null;
        const previous = await activeOf(c, row.tenant_id);
        if (previous && previous.id !== row.replaces_appliance_id) return null;
        let replaced: EnrolResult['replaced'] = null;
        if (previous) replaced = { applianceId: previous.id, droppedEnvelopes: await revoke(c, previous.id, args.now, 'replaced') };
        const id = newId('a');
        const appliance = (
          await q<ApplianceRow>(
            'INSERT INTO appliances (id, tenant_id, signing_public_key, encryption_public_key, label, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
            [id, row.tenant_id, args.signingPublicKey, args.encryptionPublicKey, args.label, args.now],
            c,
          )
        )[0]!;
        await c.query('UPDATE enrolment_codes SET used_at = $1, appliance_id = $2 WHERE code_hash = $3', [args.now, id, hash]);
        return { appliance, replaced };
      }),
    getAppliance: async (id) => (await q<ApplianceRow>('SELECT * FROM appliances WHERE id = $1', [id]))[0],
    activeAppliances: () => q<ApplianceRow>('SELECT * FROM appliances WHERE revoked_at IS NULL'),
    revokeAppliance: (id, now, reason = 'operator') => tx((c) => revoke(c, id, now, reason)),
    revokedAmong: async (ids) =>
      ids.length === 0 ? [] : (await q<{ id: string }>('SELECT id FROM appliances WHERE id = ANY($1) AND revoked_at IS NOT NULL', [ids])).map((r) => r.id),
    async listTenants() {
      const tenants = await q<{ id: string; label: string | null; created_at: number }>('SELECT id, label, created_at FROM tenants ORDER BY id');
      const out: TenantSummary[] = [];
      for (const t of tenants) {
        const appliances = await q<ApplianceRow & { queued: number }>(
          'SELECT a.*, (SELECT count(*) FROM envelopes e WHERE e.appliance_id = a.id) AS queued FROM appliances a WHERE tenant_id = $1 ORDER BY enrolled_at',
          [t.id],
        );
        out.push({
          id: t.id,
          label: t.label,
          createdAt: t.created_at,
          phoneNumberIds: await store.phoneNumbersOf(t.id),
          appliances: appliances.map((a) => ({
            id: a.id,
            label: a.label,
            enrolledAt: a.enrolled_at,
            revokedAt: a.revoked_at,
            revokedReason: a.revoked_reason,
            lastSeenAt: a.last_seen_at,
            queued: a.queued,
          })),
        });
      }
      return out;
    },

    commit(parts, receivedAt) {
      if (!prepare || !dedupHash) return Promise.reject(new Error('this store was opened without sealing keys (operator mode)'));
      return new Promise<PartOutcome[]>((resolve, reject) => {
        pending.push({ parts, receivedAt, resolve, reject });
        kick();
      });
    },
    // Nothing at or past the oldest claim: a seq reserved earlier may still commit (one snapshot
    // for both, and a group's envelopes and the deletion of its claim commit together).
    envelopesAfter: (id, after, limit) =>
      q(
        `SELECT appliance_id, seq, tenant_id, received_at, enc, ct, epoch FROM envelopes
         WHERE appliance_id = $1 AND seq > $2 AND seq < coalesce((SELECT min(first_seq) FROM seq_claims WHERE appliance_id = $1), 9223372036854775807)
         ORDER BY seq LIMIT $3`,
        [id, after, limit],
      ),
    async queueHeads(ids) {
      const out = new Map<string, number>();
      if (ids.length === 0) return out;
      for (const r of await q<{ appliance_id: string; seq: number }>(
        'SELECT appliance_id, max(seq) AS seq FROM envelopes WHERE appliance_id = ANY($1) GROUP BY appliance_id',
        [ids],
      )) {
        out.set(r.appliance_id, r.seq);
      }
      return out;
    },
    async ack(id, seqs) {
      const deleted = new Set(
        (await q<{ seq: number }>('DELETE FROM envelopes WHERE appliance_id = $1 AND seq = ANY($2) RETURNING seq', [id, seqs])).map((r) => r.seq),
      );
      return seqs.map((s) => deleted.has(s));
    },
    async backlogOf(id) {
      const r = (await q<{ n: number; oldest: number | null }>('SELECT count(*) AS n, min(received_at) AS oldest FROM envelopes WHERE appliance_id = $1', [id]))[0]!;
      return { queued: r.n, oldestAt: r.oldest };
    },
    queueByTenant: () => q('SELECT tenant_id, count(*) AS n, min(received_at) AS oldest FROM envelopes GROUP BY tenant_id'),
    queued: async (tenantId) =>
      (tenantId
        ? await q<{ n: number }>('SELECT count(*) AS n FROM envelopes WHERE tenant_id = $1', [tenantId])
        : await q<{ n: number }>('SELECT count(*) AS n FROM envelopes'))[0]!.n,
    expire: (before) =>
      tx(async (c) => {
        const rows = await q<{ tenant_id: string }>('DELETE FROM envelopes WHERE received_at < $1 RETURNING tenant_id', [before], c);
        await c.query('DELETE FROM dedup WHERE seen_at < $1', [before]);
        await c.query('DELETE FROM upgrade_nonces WHERE expires_at < $1', [Date.now()]);
        const counts = new Map<string, number>();
        for (const r of rows) counts.set(r.tenant_id, (counts.get(r.tenant_id) ?? 0) + 1);
        return [...counts];
      }),
    touch(ids, at) {
      if (ids.length) pool.query('UPDATE appliances SET last_seen_at = $2 WHERE id = ANY($1)', [ids, at]).catch(() => undefined);
    },
    latestCheckpoint: async (id) => (await q<CheckpointRow>('SELECT * FROM checkpoints WHERE appliance_id = $1', [id]))[0],
    async saveCheckpoint(row) {
      await pool.query(
        `INSERT INTO checkpoints (appliance_id, seq, head_hash, at, signature, received_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (appliance_id) DO UPDATE SET seq = excluded.seq, head_hash = excluded.head_hash, at = excluded.at,
           signature = excluded.signature, received_at = excluded.received_at`,
        [row.appliance_id, row.seq, row.head_hash, row.at, row.signature, row.received_at],
      );
    },
    async checkUpgrade(id, nonce, expiresAt, _now, envelopeVersion) {
      const r = (
        await q<{ fresh: number; conflict_until: number }>(
          `WITH n AS (INSERT INTO upgrade_nonces (appliance_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1)
           SELECT (SELECT count(*) FROM n) AS fresh, coalesce((SELECT conflict_until FROM connection_leases WHERE appliance_id = $1), 0) AS conflict_until`,
          [id, nonce, expiresAt],
        )
      )[0]!;
      if (r.fresh === 1 && envelopeVersion !== undefined) {
        await pool.query('UPDATE appliances SET envelope_version = $2 WHERE id = $1 AND envelope_version <> $2', [id, envelopeVersion]);
      }
      return { fresh: r.fresh === 1, conflictUntil: r.conflict_until };
    },
    claimLease: (id, holder, instance, now, policy) =>
      tx(async (c) => {
        await c.query('INSERT INTO connection_leases (appliance_id) VALUES ($1) ON CONFLICT DO NOTHING', [id]);
        const row = (await q<LeaseRow>('SELECT holder, instance, renewed_at, takeovers, conflict_until FROM connection_leases WHERE appliance_id = $1 FOR UPDATE', [id], c))[0];
        const { next, claim } = decideLease(row, holder, instance, now, policy);
        await c.query(
          `UPDATE connection_leases SET holder = $2, instance = $3, renewed_at = $4, takeovers = $5, conflict_until = $6 WHERE appliance_id = $1`,
          [id, next.holder, next.instance, next.renewed_at, next.takeovers, next.conflict_until],
        );
        // The instance holding the old socket closes it when it hears this (or at its next check).
        await c.query(`SELECT pg_notify('${LEASES_CHANNEL}', $1)`, [id]);
        return claim;
      }),
    async releaseLease(id, holder) {
      await pool.query('UPDATE connection_leases SET holder = NULL, instance = NULL WHERE appliance_id = $1 AND holder = $2', [id, holder]);
    },
    async renewLeases(instance, now) {
      await pool.query('UPDATE connection_leases SET renewed_at = $2 WHERE instance = $1', [instance, now]);
    },
    async leaseHolders(ids) {
      const out = new Map<string, string | null>(ids.map((id) => [id, null]));
      if (ids.length === 0) return out;
      for (const r of await q<{ appliance_id: string; holder: string | null }>('SELECT appliance_id, holder FROM connection_leases WHERE appliance_id = ANY($1)', [ids])) {
        out.set(r.appliance_id, r.holder);
      }
      return out;
    },
    onSignal(listener) {
      listeners.push(listener);
    },
    async probe() {
      // After a failover the URL may lead to a standby: reads work there, commits would not.
      const r = (await q<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby'))[0]!;
      if (r.standby) throw new Error('the database is a read-only standby');
    },
    healthy: () => alive,
    async close() {
      if (!alive) return;
      alive = false;
      if (listenTimer) clearTimeout(listenTimer);
      clearInterval(sweepTimer);
      await listenClient?.end().catch(() => undefined);
      await sweeping;
      await Promise.all([pool.end(), fastPool.end()]);
    },
  };
  return store;
}
