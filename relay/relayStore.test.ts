/**
 * The store contract: the same tests against the embedded SQLite store and a real PostgreSQL 15
 * (`testing/postgres.ts`). "Two instances" are two store handles on one database.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_INFO, envelopeAad, EnvelopePlaintextSchema } from '../shared/envelope';
import { generateX25519KeyPair, openAuth, x25519PrivateRaw, x25519PublicFromRaw, type X25519KeyPair } from './crypto/hpke';
import { parseWebhook, routeWebhook, signMetaBody, type TenantPart } from './intake';
import { migrateRelayStore, openRelayStore, type RelayStore, type StoreSignal } from './relayStore';
import { RoutingChanged, StoreConflict, StoreInputError, type LeasePolicy } from './store';
import { Client as PgClient } from 'pg';
import { PG_SCHEMA_VERSION } from './postgresStore';
import { TestPostgres } from './testing/postgres';
import { batchWebhook, metaJson, reactionChange, textMessageChange } from './testing/signWebhook';

const SECRET = 'contract-app-secret-0001';
const relayKeys = generateX25519KeyPair();
const sealing = { relayPrivateKey: x25519PrivateRaw(relayKeys.privateKey), dedupKey: randomBytes(32) };
const POLICY: LeasePolicy = { takeoverLimit: 3, windowMs: 15 * 60_000, holdMs: 60 * 60_000, staleMs: 3_000 };

let pg: TestPostgres | null = null;
let dbCounter = 0;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  pg = await TestPostgres.start();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh database for one test, and a way to open more handles on it (more "instances"). */
async function freshDatabase(kind: 'sqlite' | 'postgres'): Promise<string> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'relay-contract-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return `sqlite:${join(dir, 'relay.sqlite')}`;
  }
  const url = await pg!.createDatabase(`contract_${process.pid}_${++dbCounter}`);
  await migrateRelayStore(url);
  return url;
}

async function open(url: string, withSealing = true): Promise<RelayStore> {
  const store = await openRelayStore(url, withSealing ? { sealing, statementTimeoutMs: 5_000 } : {});
  cleanups.push(() => store.close());
  return store;
}

interface Paired {
  tenantId: string;
  phone: string;
  applianceId: string;
  keys: X25519KeyPair;
}

async function pairTenant(store: RelayStore, tenantId: string, phone: string): Promise<Paired> {
  await store.createTenant({ id: tenantId, phoneNumberIds: [phone], now: Date.now() });
  const { code } = await store.issueEnrolmentCode({ tenantId, now: Date.now(), ttlMs: 60_000 });
  const keys = generateX25519KeyPair();
  const signing = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;
  const r = await store.redeemEnrolmentCode({
    code,
    signingPublicKey: Buffer.from(signing, 'base64url'),
    encryptionPublicKey: keys.publicRaw,
    label: null,
    now: Date.now(),
  });
  return { tenantId, phone, applianceId: r!.appliance.id, keys };
}

function partsOf(body: object, tenants: Record<string, string>): TenantPart[] {
  const raw = Buffer.from(metaJson(body));
  return routeWebhook(raw, signMetaBody(SECRET, raw), parseWebhook(raw)!, (p) => tenants[p]).parts;
}

const textPart = (t: Paired, wamid: string, text = 'hello') =>
  partsOf(batchWebhook([textMessageChange({ phoneNumberId: t.phone, wamid, text })]), { [t.phone]: t.tenantId });

function open1(t: Paired, row: { seq: number; enc: Buffer; ct: Buffer; received_at: number }): string {
  const pt = openAuth({
    recipient: t.keys,
    senderPublicKey: x25519PublicFromRaw(relayKeys.publicRaw),
    enc: row.enc,
    info: Buffer.from(ENVELOPE_INFO),
    aad: Buffer.from(envelopeAad({ tenantId: t.tenantId, applianceId: t.applianceId, seq: row.seq, receivedAt: row.received_at })),
    ct: row.ct,
  });
  const p = EnvelopePlaintextSchema.parse(JSON.parse(pt.toString('utf8')));
  return p.kind === 'meta' ? Buffer.from(p.body, 'base64url').toString('utf8') : p.body;
}

describe.each(['sqlite', 'postgres'] as const)('the %s store', (kind) => {
  it('keeps tenants and numbers; refuses a number of another tenant or one that is not an id, changing nothing', async () => {
    const store = await open(await freshDatabase(kind), false);
    await store.createTenant({ id: 'clinic-a', label: 'Praxis A', phoneNumberIds: ['100001'], now: 1 });
    await store.createTenant({ id: 'clinic-b', phoneNumberIds: [], now: 2 });
    expect(await store.getTenant('clinic-a')).toEqual({ id: 'clinic-a', label: 'Praxis A', created_at: 1 });
    await expect(store.addPhoneNumber('clinic-b', '100001', 3)).rejects.toBeInstanceOf(StoreConflict);
    await expect(store.addPhoneNumber('clinic-b', '+49 30 1234', 3)).rejects.toBeInstanceOf(StoreInputError);
    await expect(store.createTenant({ id: 'clinic-c', phoneNumberIds: ['abc'], now: 3 })).rejects.toBeInstanceOf(StoreInputError);
    expect(await store.getTenant('clinic-c')).toBeUndefined();
    await store.addPhoneNumber('clinic-b', '100002', 3);
    expect(await store.tenantsForPhoneNumbers(['100001', '100002', '999'])).toEqual(
      new Map([
        ['100001', 'clinic-a'],
        ['100002', 'clinic-b'],
      ]),
    );
    expect(await store.removePhoneNumber('100002')).toBe(true);
    expect(await store.removePhoneNumber('100002')).toBe(false);
    expect(await store.phoneNumbersOf('clinic-b')).toEqual([]);
  });

  it('routes a number an operator moved to its new clinic at once, at every instance', async () => {
    const url = await freshDatabase(kind);
    const serving = await open(url);
    const operator = await open(url, false);
    const now = Date.now();
    await operator.createTenant({ id: 'clinic-old', phoneNumberIds: ['800001'], now });
    await operator.createTenant({ id: 'clinic-new', phoneNumberIds: [], now });
    expect(await serving.tenantsForPhoneNumbers(['800001', '800002'])).toEqual(new Map([['800001', 'clinic-old']]));
    await operator.removePhoneNumber('800001');
    await operator.addPhoneNumber('clinic-new', '800001', now);
    await operator.addPhoneNumber('clinic-new', '800002', now);
    // Well inside the 5 s after which an instance forgets its routing anyway: it was told.
    const moved = new Map([['800001', 'clinic-new'], ['800002', 'clinic-new']]);
    const deadline = Date.now() + 1_500;
    let routed = await serving.tenantsForPhoneNumbers(['800001', '800002']);
    while (routed.get('800001') !== 'clinic-new' || routed.get('800002') !== 'clinic-new') {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
      routed = await serving.tenantsForPhoneNumbers(['800001', '800002']);
    }
    expect(routed).toEqual(moved);
  });

  it.runIf(kind === 'sqlite')('refuses, writing nothing, a commit routed before another connection changed the numbers', async () => {
    const url = await freshDatabase(kind);
    const serving = await open(url);
    const operator = await open(url, false);
    const a = await pairTenant(operator, 'clinic-a', '810001');
    const b = await pairTenant(operator, 'clinic-b', '810002');
    const routed = await serving.route(['810001']);
    expect(routed.tenants).toEqual(new Map([['810001', 'clinic-a']]));
    expect((await serving.commit(textPart(a, 'wamid.r1'), Date.now(), routed.version))[0]).toMatchObject({ outcome: 'queued' });
    await operator.removePhoneNumber('810001');
    await operator.addPhoneNumber('clinic-b', '810001', Date.now());
    // The serving memory has not heard of it; the commit's check under the write lock has.
    expect((await serving.route(['810001'])).tenants.get('810001')).toBe('clinic-a');
    await expect(serving.commit(textPart(a, 'wamid.r2'), Date.now(), routed.version)).rejects.toBeInstanceOf(RoutingChanged);
    expect(await serving.queued('clinic-a')).toBe(1);
    const again = await serving.route(['810001']);
    expect(again.tenants.get('810001')).toBe('clinic-b');
    expect((await serving.commit(textPart({ ...b, phone: '810001' }, 'wamid.r2'), Date.now(), again.version))[0]).toMatchObject({
      outcome: 'queued',
      tenantId: 'clinic-b',
    });
    expect(await serving.queued('clinic-b')).toBe(1);
  });

  it('issues one valid enrolment code per tenant; replacing an appliance needs --replace and drops its queue', async () => {
    const store = await open(await freshDatabase(kind));
    await store.createTenant({ id: 'clinic-a', phoneNumberIds: ['200001'], now: Date.now() });
    const first = await store.issueEnrolmentCode({ tenantId: 'clinic-a', now: Date.now(), ttlMs: 60_000 });
    const second = await store.issueEnrolmentCode({ tenantId: 'clinic-a', now: Date.now(), ttlMs: 60_000 });
    expect(second.voidedCodes).toBe(1);
    const keys = { signingPublicKey: randomBytes(32), encryptionPublicKey: generateX25519KeyPair().publicRaw, label: null, now: Date.now() };
    expect(await store.redeemEnrolmentCode({ code: first.code, ...keys })).toBeNull();
    const enrolled = await store.redeemEnrolmentCode({ code: second.code, ...keys });
    expect(enrolled?.replaced).toBeNull();
    expect(await store.redeemEnrolmentCode({ code: second.code, ...keys })).toBeNull();
    await expect(store.issueEnrolmentCode({ tenantId: 'clinic-a', now: Date.now(), ttlMs: 60_000 })).rejects.toBeInstanceOf(StoreConflict);
    const t: Paired = { tenantId: 'clinic-a', phone: '200001', applianceId: enrolled!.appliance.id, keys: generateX25519KeyPair() };
    await store.commit(textPart(t, 'wamid.q1'), Date.now());
    const replacing = await store.issueEnrolmentCode({ tenantId: 'clinic-a', now: Date.now(), ttlMs: 60_000, replace: true });
    expect(replacing.replaces).toEqual({ applianceId: t.applianceId, queuedEnvelopes: 1 });
    const again = await store.redeemEnrolmentCode({ code: replacing.code, ...keys });
    expect(again?.replaced).toEqual({ applianceId: t.applianceId, droppedEnvelopes: 1 });
    expect((await store.getAppliance(t.applianceId))?.revoked_reason).toBe('replaced');
    expect(await store.revokedAmong([t.applianceId, again!.appliance.id])).toEqual([t.applianceId]);
    expect((await store.listTenants())[0]?.appliances.map((a) => a.queued)).toEqual([0, 0]);
  });

  it('seals, queues in seq order, recognises a retry and not a changed item, and deletes on ack', async () => {
    const store = await open(await freshDatabase(kind));
    const t = await pairTenant(store, 'clinic-a', '300001');
    const at = Date.now();
    const first = await store.commit(textPart(t, 'wamid.1', 'eins'), at);
    const second = await store.commit(textPart(t, 'wamid.2', 'zwei'), at + 1);
    expect(first).toEqual([{ tenantId: 'clinic-a', outcome: 'queued', applianceId: t.applianceId, seq: 1, version: 1 }]);
    expect(second[0]).toMatchObject({ outcome: 'queued', seq: 2 });
    expect(await store.commit(textPart(t, 'wamid.1', 'eins'), at + 2)).toEqual([{ tenantId: 'clinic-a', outcome: 'duplicate' }]);
    const react = (emoji: string) =>
      partsOf(batchWebhook([reactionChange({ phoneNumberId: t.phone, wamid: 'wamid.r', reactsTo: 'wamid.1', emoji, timestamp: 1 })]), { [t.phone]: t.tenantId });
    expect((await store.commit(react('👍'), at + 3))[0]?.outcome).toBe('queued');
    expect((await store.commit(react('❤️'), at + 4))[0]?.outcome).toBe('queued');
    const rows = await store.envelopesAfter(t.applianceId, 0, 10);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4].map((_, i) => rows[i]!.seq));
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((a, b) => a - b));
    expect(open1(t, rows[0]!)).toContain('eins');
    expect(open1(t, rows[1]!)).toContain('zwei');
    expect(await store.envelopesAfter(t.applianceId, rows[1]!.seq, 1)).toHaveLength(1);
    expect((await store.queueHeads([t.applianceId, 'a-none'])).get(t.applianceId)).toBe(rows.at(-1)!.seq);
    expect(await store.backlogOf(t.applianceId)).toEqual({ queued: 4, oldestAt: at });
    expect(await store.queueByTenant()).toEqual([{ tenant_id: 'clinic-a', n: 4, oldest: at }]);
    expect(await store.ack(t.applianceId, [rows[0]!.seq, rows[0]!.seq + 1000])).toEqual([true, false]);
    expect(await store.queued('clinic-a')).toBe(3);
    expect(await store.expire(at + 2)).toEqual([['clinic-a', 1]]);
    expect(await store.queued()).toBe(2);
  });

  it('answers no_appliance for the unpaired tenant only; the other part of the POST is queued', async () => {
    const store = await open(await freshDatabase(kind));
    const a = await pairTenant(store, 'clinic-a', '400001');
    await store.createTenant({ id: 'clinic-b', phoneNumberIds: ['400002'], now: Date.now() });
    // Built afresh for each commit, as the server does: on SQLite a commit hands the plaintexts over.
    const parts = () =>
      partsOf(
        batchWebhook([
          textMessageChange({ phoneNumberId: '400002', wamid: 'wamid.b', text: 'b' }),
          textMessageChange({ phoneNumberId: '400001', wamid: 'wamid.a', text: 'a' }),
        ]),
        { '400001': 'clinic-a', '400002': 'clinic-b' },
      );
    const outcomes = await store.commit(parts(), Date.now());
    expect(outcomes.map((o) => [o.tenantId, o.outcome])).toEqual([
      ['clinic-b', 'no_appliance'],
      ['clinic-a', 'queued'],
    ]);
    expect(await store.queued('clinic-a')).toBe(1);
    // Meta's retry, after clinic A's appliance was revoked too: A's part is recognised as queued
    // already (not held back for want of an appliance), and B's keys were not kept, so B's part is
    // still waiting rather than taken for a duplicate.
    await store.revokeAppliance(a.applianceId, Date.now());
    expect((await store.commit(parts(), Date.now())).map((o) => [o.tenantId, o.outcome])).toEqual([
      ['clinic-b', 'no_appliance'],
      ['clinic-a', 'duplicate'],
    ]);
    expect(await store.queued()).toBe(0);
  });

  it('gives concurrent commits from two instances distinct seqs in commit order, and no item twice', async () => {
    const url = await freshDatabase(kind);
    const one = await open(url);
    const two = kind === 'postgres' ? await open(url) : one;
    const t = await pairTenant(one, 'clinic-a', '500001');
    const n = 40;
    // Every item is posted twice, to both instances at once (Meta retrying while the first is in flight).
    const outcomes = await Promise.all(
      Array.from({ length: n * 2 }, (_, i) => (i % 2 ? two : one).commit(textPart(t, `wamid.c${i >> 1}`, `text ${i >> 1}`), Date.now())),
    );
    const queued = outcomes.flat().filter((o) => o.outcome === 'queued');
    expect(queued).toHaveLength(n);
    const rows = await one.envelopesAfter(t.applianceId, 0, 1000);
    expect(rows).toHaveLength(n);
    expect(new Set(rows.map((r) => r.seq)).size).toBe(n);
    expect(new Set(rows.map((r) => open1(t, r))).size).toBe(n);
  });

  it('refuses a reused upgrade nonce, at any instance and after a restart', async () => {
    const url = await freshDatabase(kind);
    const one = await open(url);
    const now = Date.now();
    expect(await one.checkUpgrade('a-1', 'nonce-1', now + 60_000, now)).toEqual({ fresh: true, conflictUntil: 0 });
    expect((await one.checkUpgrade('a-1', 'nonce-1', now + 60_000, now)).fresh).toBe(false);
    expect((await one.checkUpgrade('a-2', 'nonce-1', now + 60_000, now)).fresh).toBe(true);
    await one.close();
    const two = await open(url);
    expect((await two.checkUpgrade('a-1', 'nonce-1', now + 60_000, now)).fresh).toBe(false);
  });

  it('lets the newest connection win, holds both off after repeated takeovers, and ignores a dead instance', async () => {
    const url = await freshDatabase(kind);
    const one = await open(url);
    const two = kind === 'postgres' ? await open(url) : one;
    let t = Date.now();
    expect(await one.claimLease('a-1', 'i1/1', 'i1', t, POLICY)).toEqual({ outcome: 'granted', previous: null });
    expect(await two.claimLease('a-1', 'i2/1', 'i2', ++t, POLICY)).toEqual({ outcome: 'granted', previous: { holder: 'i1/1', instance: 'i1' } });
    expect((await one.leaseHolders(['a-1', 'a-x'])).get('a-1')).toBe('i2/1');
    // Only the holder's release counts.
    await one.releaseLease('a-1', 'i1/1');
    expect((await two.leaseHolders(['a-1'])).get('a-1')).toBe('i2/1');
    expect((await one.claimLease('a-1', 'i1/2', 'i1', ++t, POLICY)).outcome).toBe('granted');
    const third = await two.claimLease('a-1', 'i2/2', 'i2', ++t, POLICY);
    expect(third).toMatchObject({ outcome: 'conflict', previous: { holder: 'i1/2' } });
    expect((await one.leaseHolders(['a-1'])).get('a-1')).toBeNull();
    expect((await one.checkUpgrade('a-1', 'n-after', t + 60_000, t)).conflictUntil).toBe(t + POLICY.holdMs);
    expect((await one.claimLease('a-1', 'i1/3', 'i1', ++t, POLICY)).outcome).toBe('conflict');

    // A lease its instance stopped renewing (killed) is taken without counting as a takeover.
    expect(await one.claimLease('a-2', 'i1/9', 'i1', t, POLICY)).toMatchObject({ outcome: 'granted', previous: null });
    await one.renewLeases('i1', t + 1_000);
    expect((await two.claimLease('a-2', 'i2/9', 'i2', t + 2_000, POLICY)).previous).toEqual({ holder: 'i1/9', instance: 'i1' });
    expect((await one.claimLease('a-2', 'i3/9', 'i3', t + 2_000 + POLICY.staleMs + 1, POLICY)).previous).toBeNull();
  });

  it('keeps the newest witness checkpoint', async () => {
    const store = await open(await freshDatabase(kind));
    expect(await store.latestCheckpoint('a-1')).toBeUndefined();
    await store.saveCheckpoint({ appliance_id: 'a-1', seq: 3, head_hash: 'h3', at: 1, signature: 's3', received_at: 2 });
    await store.saveCheckpoint({ appliance_id: 'a-1', seq: 5, head_hash: 'h5', at: 3, signature: 's5', received_at: 4 });
    expect(await store.latestCheckpoint('a-1')).toEqual({ appliance_id: 'a-1', seq: 5, head_hash: 'h5', at: 3, signature: 's5', received_at: 4 });
    await store.probe();
  });

  it.runIf(kind === 'postgres')('tells the other instances of new envelopes and moved leases', async () => {
    const url = await freshDatabase(kind);
    const one = await open(url);
    const two = await open(url);
    const heard: StoreSignal[] = [];
    two.onSignal((s) => heard.push(s));
    const t = await pairTenant(one, 'clinic-a', '600001');
    await one.commit(textPart(t, 'wamid.n1'), Date.now());
    await one.claimLease(t.applianceId, 'i1/1', 'i1', Date.now(), POLICY);
    const deadline = Date.now() + 5_000;
    while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Two commits on different connections: their notifications may arrive in either order.
    expect(heard).toHaveLength(2);
    expect(heard).toEqual(
      expect.arrayContaining([
        { kind: 'envelopes', applianceId: t.applianceId },
        { kind: 'lease', applianceId: t.applianceId },
      ]),
    );
  });
});

/**
 * Seqs are reserved before their group commits, so groups of two instances for one clinic can
 * commit out of seq order. A reader must still never skip the earlier seq. To hold one group
 * between its reservation and its commit, a test transaction inserts (and keeps uncommitted) an
 * envelope row at the seq that group will take: its insert waits on the primary key.
 */
describe('the PostgreSQL store when a group commits after a later seq', () => {
  async function blockSeq(url: string, applianceId: string, seq: number) {
    const client = new PgClient({ connectionString: url });
    await client.connect();
    cleanups.push(() => client.end());
    await client.query('BEGIN');
    await client.query("INSERT INTO envelopes (appliance_id, seq, tenant_id, received_at, enc, ct) VALUES ($1, $2, 'x', 0, '', '')", [applianceId, seq]);
    return { client, waiting: () => lockWait(url, 'INSERT INTO envelopes'), release: () => client.query('ROLLBACK') };
  }
  /** Resolves once a statement containing `sql` waits on a lock. */
  async function lockWait(url: string, sql: string) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await pg_(url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0", [sql]);
      if (r[0]!.n > 0) return;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`no statement with ${sql} came to wait on a lock`);
  }
  async function pg_(url: string, sql: string, params: unknown[] = []) {
    const c = new PgClient({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<{ n: number; pid: number }>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }

  it('delivers nothing past a seq whose group has not committed, then both in seq order', async () => {
    const url = await freshDatabase('postgres');
    const one = await open(url);
    const two = await open(url);
    const t = await pairTenant(one, 'clinic-a', '900001');
    const block = await blockSeq(url, t.applianceId, 1);
    const early = one.commit(textPart(t, 'wamid.early', 'first in'), Date.now());
    await block.waiting();
    const late = await two.commit(textPart(t, 'wamid.late', 'second in'), Date.now());
    expect(late[0]).toMatchObject({ outcome: 'queued', seq: 2 });
    // Seq 2 is committed, seq 1 is not yet: a reader that took seq 2 now would never go back.
    expect(await two.envelopesAfter(t.applianceId, 0, 10)).toEqual([]);
    expect(await one.envelopesAfter(t.applianceId, 0, 10)).toEqual([]);
    // Past a sweep round: a live group's claim is not taken for an abandoned one.
    await new Promise((res) => setTimeout(res, 1_500));
    await block.release();
    expect((await early)[0]).toMatchObject({ outcome: 'queued', seq: 1 });
    const rows = await two.envelopesAfter(t.applianceId, 0, 10);
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(rows.map((r) => open1(t, r))).toEqual([expect.stringContaining('first in'), expect.stringContaining('second in')]);
  });

  it('lets later envelopes through once the earlier group is gone (its connection killed); the retry of its webhook gets a new seq', async () => {
    const url = await freshDatabase('postgres');
    const one = await open(url);
    const two = await open(url);
    const t = await pairTenant(one, 'clinic-a', '900002');
    const heard: StoreSignal[] = [];
    two.onSignal((s) => heard.push(s));
    const block = await blockSeq(url, t.applianceId, 1);
    // Its failure is taken at once: it can arrive while the test still waits for the kill's answer.
    const lost = one.commit(textPart(t, 'wamid.lost', 'never answered'), Date.now()).then(
      () => null,
      (err: unknown) => err,
    );
    await block.waiting();
    expect((await two.commit(textPart(t, 'wamid.after', 'after it'), Date.now()))[0]).toMatchObject({ seq: 2 });
    const [holder] = await pg_(url, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO envelopes%'");
    await pg_(url, 'SELECT pg_terminate_backend($1)', [holder!.pid]);
    expect(await lost).toBeInstanceOf(Error);
    await block.release();
    const deadline = Date.now() + 5_000;
    let rows: Awaited<ReturnType<RelayStore['envelopesAfter']>> = [];
    while (rows.length === 0 && Date.now() < deadline) {
      rows = await two.envelopesAfter(t.applianceId, 0, 10);
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(rows.map((r) => open1(t, r))).toEqual([expect.stringContaining('after it')]);
    // The instance holding the socket is woken, not left to its catch-up round.
    expect(heard).toContainEqual({ kind: 'envelopes', applianceId: t.applianceId });
    // Meta's retry of the unanswered webhook is new to the relay and gets a fresh seq.
    expect((await one.commit(textPart(t, 'wamid.lost', 'never answered'), Date.now()))[0]).toMatchObject({ outcome: 'queued', seq: 3 });
  });

  it('drops the envelopes of a group still committing when its appliance is revoked', async () => {
    const url = await freshDatabase('postgres');
    const one = await open(url);
    const two = await open(url);
    const t = await pairTenant(one, 'clinic-a', '900003');
    const block = await blockSeq(url, t.applianceId, 1);
    const inFlight = one.commit(textPart(t, 'wamid.rev', 'in flight'), Date.now());
    await block.waiting();
    const revoked = two.revokeAppliance(t.applianceId, Date.now());
    // The revocation waits for the group rather than drop the queue under it.
    await lockWait(url, 'pg_advisory_xact_lock_shared');
    await block.release();
    expect((await inFlight)[0]).toMatchObject({ outcome: 'queued', seq: 1 });
    expect(await revoked).toBe(1);
    expect(await one.queued('clinic-a')).toBe(0);
  });
});

describe('the PostgreSQL store when the database goes away', () => {
  it('fails commits and the probe while PostgreSQL is down (no commit, no success), and works again after', async () => {
    const url = await freshDatabase('postgres');
    const store = await open(url);
    const t = await pairTenant(store, 'clinic-a', '700001');
    await store.commit(textPart(t, 'wamid.before'), Date.now());
    await pg!.stop({ mode: 'immediate' });
    try {
      await expect(store.commit(textPart(t, 'wamid.down'), Date.now())).rejects.toThrow();
      await expect(store.probe()).rejects.toThrow();
    } finally {
      await pg!.start();
    }
    await store.probe();
    expect((await store.commit(textPart(t, 'wamid.down'), Date.now()))[0]?.outcome).toBe('queued');
    expect(await store.queued('clinic-a')).toBe(2);
  }, 60_000);

  it('refuses to serve a database that was not migrated, and says how to fix it', async () => {
    const url = await pg!.createDatabase(`contract_${process.pid}_bare`);
    await expect(openRelayStore(url)).rejects.toThrow(/npm run relay -- migrate/);
    expect(await migrateRelayStore(url)).toEqual({ from: 0, to: PG_SCHEMA_VERSION });
    expect(await migrateRelayStore(url)).toEqual({ from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
  });
});

describe('the sqlite store’s queue writer', () => {
  it('fails a commit it cannot hand to its writer thread, keeps committing others, and still closes', async () => {
    const url = await freshDatabase('sqlite');
    const store = await openRelayStore(url, { sealing, statementTimeoutMs: 5_000 });
    const t = await pairTenant(store, 'tenant-handoff', '910001');
    const parts = textPart(t, 'wamid.h1');
    expect((await store.commit(parts, Date.now()))[0]).toMatchObject({ outcome: 'queued' });
    // Its plaintexts moved to the writer thread with the first commit: they cannot travel again.
    await expect(store.commit(parts, Date.now())).rejects.toThrow('already handed to the queue writer');
    expect((await store.commit(textPart(t, 'wamid.h2'), Date.now()))[0]).toMatchObject({ outcome: 'queued' });
    // Before, Node dropped that hand-off without a word and its request waited for ever.
    await expect(Promise.race([store.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 5_000))])).resolves.toBe('closed');
  }, 30_000);
});
