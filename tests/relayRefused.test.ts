/**
 * When the relay no longer accepts this appliance, the core says so (`refused`, with a reason the
 * IT admin can act on), stops hammering the relay, and comes back with a new pairing. Real relay
 * process, real cores (SQLCipher + OS keychain): run with
 * `node scripts/test.mjs --vitest-only tests/relayRefused`.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCore, type CoreHandle } from '../electron/core/createCore';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { createRelayLink, type RelayLink } from '../electron/core/link/relayLink';
import { loadPairing, savePairing } from '../electron/core/link/pairing';
import { DATABASE_FILE } from '../electron/core/db/coreStore';
import { openDatabase } from '../electron/core/db/open';
import { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import { TestAppliance } from '../relay/testing/testAppliance';
import { openStore } from '../relay/store';
import type { RelayStatus } from '../shared/rpc';
import { ADMIN, call, quietLogger, RECEPTION, tempDataDir, waitFor } from './helpers';

const PHONE = '110000000000031';
const TENANT = 'clinic-refused';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a relay that refuses this appliance', () => {
  let relay: RelayProcess;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: TENANT, phoneNumberIds: [PHONE] });
  });
  afterAll(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await relay?.stop();
  });

  /** A real core in a throwaway folder, closed and removed after the suite. */
  async function newCore(options: { dataDir?: string; now?: () => number } = {}): Promise<CoreHandle> {
    let dataDir = options.dataDir;
    if (!dataDir) {
      const data = tempDataDir();
      cleanups.push(() => data.remove());
      dataDir = data.dir;
    }
    const core = await createCore({ dataDir, logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' }, ...(options.now ? { now: options.now } : {}) });
    cleanups.push(() => core.close());
    return core;
  }

  async function pair(core: CoreHandle): Promise<string> {
    const { applianceId } = await call(core, ADMIN, 'setup.pair', { relayUrl: relay.url, code: await relay.issueEnrolmentCode(TENANT) });
    await waitFor('relay link up', () => core.relayStatus().state === 'connected');
    return applianceId;
  }

  function stateEvents(core: CoreHandle): RelayStatus[] {
    const seen: RelayStatus[] = [];
    core.connect('test').on((event, payload) => {
      if (event === 'relay.stateChanged') seen.push(payload as RelayStatus);
    });
    return seen;
  }

  const refusedUpgrades = (reason: string) => relay.metric('relay_ws_upgrades_refused_total', { reason });

  it('says "revoked" when the operator revokes it, stops knocking, and a new pairing brings messages back', async () => {
    const core = await newCore();
    const applianceId = await pair(core);
    const events = stateEvents(core);

    const revoke = relay.cli(['revoke', applianceId]);
    expect(revoke.status, revoke.stderr).toBe(0);

    await waitFor('refused', () => core.relayStatus().state === 'refused');
    expect(await call(core, RECEPTION, 'relay.status', {})).toMatchObject({ state: 'refused', refusedReason: 'revoked', relayUrl: expect.any(String) });
    expect(events.at(-1)).toMatchObject({ state: 'refused', refusedReason: 'revoked' });
    // Never shown as a mere outage on the way there.
    expect(events.map((e) => e.state)).not.toContain('offline');

    // The core confirmed the revocation once (401 on its next login) and then went quiet:
    // the fast backoff would have tried several times in these two seconds.
    await waitFor('the relay refused one login', async () => (await refusedUpgrades('revoked')) >= 1);
    const knocks = await refusedUpgrades('revoked');
    await sleep(2_000);
    expect(await refusedUpgrades('revoked')).toBe(knocks);
    expect(core.relayStatus().state).toBe('refused');

    // An IT admin pairs it again with a fresh code: connected, and patients' messages flow.
    const again = await pair(core);
    expect(again).not.toBe(applianceId);
    expect(core.relayStatus()).toMatchObject({ state: 'connected', refusedReason: null });
    expect(events.at(-1)).toMatchObject({ state: 'connected' });
    const body = batchWebhook([textMessageChange({ phoneNumberId: PHONE, wamid: 'wamid.REFUSED-1', text: 'Weer verbonden?', from: '31600000031' })]);
    expect((await relay.postWebhook(body)).status).toBe(200);
    const hits = await waitFor('message stored', async () => {
      const r = await call(core, RECEPTION, 'search.messages', { query: 'verbonden' });
      return r.items.length > 0 && r.items;
    });
    expect(hits).toHaveLength(1);
    await waitFor('relay queue drained', () => relay.queued(TENANT) === 0);
  });

  it('says "revoked" on the first computer when the clinic is paired with another one', async () => {
    const first = await newCore();
    await pair(first);
    const second = await newCore();
    await pair(second);
    await waitFor('first refused', () => first.relayStatus().state === 'refused');
    expect(first.relayStatus().refusedReason).toBe('revoked');
    expect(second.relayStatus()).toMatchObject({ state: 'connected', refusedReason: null });
    await second.close();
  });

  it('does not even try when the keychain holds other device keys than the pairing, and pairs again', async () => {
    const data = tempDataDir();
    cleanups.push(() => data.remove());
    const before = await newCore({ dataDir: data.dir });
    await pair(before);
    const installationId = before.installationId;
    await before.close();

    // The database key survives (restored with the recovery key); the device keys do not.
    const secrets = await createKeytarSecretStore();
    const accounts = keychainAccounts(installationId);
    expect(await secrets.delete(accounts.deviceSigningKey)).toBe(true);
    expect(await secrets.delete(accounts.deviceEncryptionKey)).toBe(true);

    const badLogins = await refusedUpgrades('bad_signature');
    const core = await newCore({ dataDir: data.dir });
    expect(core.relayStatus()).toMatchObject({ state: 'refused', refusedReason: 'device_keys_changed' });
    expect(await call(core, RECEPTION, 'relay.status', {})).toMatchObject({ state: 'refused', refusedReason: 'device_keys_changed' });
    await sleep(1_000);
    expect(await refusedUpgrades('bad_signature')).toBe(badLogins);
    expect(core.relayStatus().state).toBe('refused');

    await pair(core);
    expect(core.relayStatus()).toMatchObject({ state: 'connected', refusedReason: null });
    // The new pairing remembers the new keys: a restart connects again without a word.
    await core.close();
    const restarted = await newCore({ dataDir: data.dir });
    await waitFor('connected after restart', () => restarted.relayStatus().state === 'connected');
  });

  it('records the device key of a pairing made before keys were recorded, at its first accepted login', async () => {
    const data = tempDataDir();
    cleanups.push(() => data.remove());
    const first = await newCore({ dataDir: data.dir });
    await pair(first);
    const installationId = first.installationId;
    await first.close();

    const secrets = await createKeytarSecretStore();
    const accounts = keychainAccounts(installationId);
    const withDb = async <T>(fn: (db: ReturnType<typeof openDatabase>['db']) => T): Promise<T> => {
      const key = Buffer.from((await secrets.get(accounts.databaseKey))!, 'hex');
      const { db } = openDatabase({ path: join(data.dir, DATABASE_FILE), key });
      try {
        return fn(db);
      } finally {
        db.close();
      }
    };
    // What an older version saved: the same pairing without the key.
    await withDb((db) => {
      const { deviceSigningPublicKey, ...older } = loadPairing(db)!;
      expect(deviceSigningPublicKey).toBeDefined();
      savePairing(db, older, Date.now());
    });
    const upgraded = await newCore({ dataDir: data.dir });
    await waitFor('connected', () => upgraded.relayStatus().state === 'connected');
    await upgraded.close();
    expect(await withDb((db) => loadPairing(db)?.deviceSigningPublicKey)).toBeDefined();

    // So a later change of keys is caught before any login.
    await secrets.delete(accounts.deviceSigningKey);
    await secrets.delete(accounts.deviceEncryptionKey);
    const moved = await newCore({ dataDir: data.dir });
    expect(moved.relayStatus()).toMatchObject({ state: 'refused', refusedReason: 'device_keys_changed' });
  });

  it('says the clock is wrong when the relay refuses a login as stale', async () => {
    const core = await newCore({ now: () => Date.now() + 5 * 60_000 });
    // Enrolment does not look at the clock; the signed login does.
    await call(core, ADMIN, 'setup.pair', { relayUrl: relay.url, code: await relay.issueEnrolmentCode(TENANT) });
    await waitFor('refused', () => core.relayStatus().state === 'refused');
    expect(core.relayStatus().refusedReason).toBe('clock_skew');
  });
});

describe('the relay link on its own', () => {
  let relay: RelayProcess;
  const links: RelayLink[] = [];
  const servers: Server[] = [];

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-link', phoneNumberIds: ['110000000000032'] });
  });
  afterAll(async () => {
    for (const link of links) await link.close();
    for (const server of servers) await new Promise((r) => server.close(r));
    await relay?.stop();
  });

  function startLink(args: { relayUrl: string; applianceId: string; tenantId: string; privateKey: KeyObject }, extra: { refusedRetryMs?: number; unrecognisedAfterMs?: number } = {}) {
    const statuses: RelayStatus[] = [];
    const link = createRelayLink({
      relayUrl: args.relayUrl,
      tenantId: args.tenantId,
      applianceId: args.applianceId,
      sign: (payload) => sign(null, payload, args.privateKey),
      open: () => Promise.reject(new Error('no deliveries expected')),
      commit: () => {},
      onStatus: (s) => statuses.push(s),
      logger: quietLogger(),
      backoff: { initialMs: 50, maxMs: 200 },
      ...extra,
    });
    links.push(link);
    return { link, statuses };
  }

  async function enrolled(): Promise<TestAppliance> {
    const appliance = TestAppliance.create();
    await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-link'));
    return appliance;
  }

  it('retries a refusal slowly and picks up an operator\'s undo', async () => {
    const appliance = await enrolled();
    const id = appliance.applianceId;
    await relay.revoke(id);
    const { link } = startLink({ relayUrl: relay.url, applianceId: id, tenantId: 'clinic-link', privateKey: appliance.signing.privateKey }, { refusedRetryMs: 1_500 });
    await waitFor('refused', () => link.status().state === 'refused');
    expect(link.status().refusedReason).toBe('revoked');
    const knocks = await relay.metric('relay_ws_upgrades_refused_total', { reason: 'revoked' });
    await sleep(1_000);
    // With a 50 ms backoff ceiling this would have been a dozen more.
    expect(await relay.metric('relay_ws_upgrades_refused_total', { reason: 'revoked' })).toBe(knocks);

    // The relay has no "unrevoke" command; an operator's undo is the row becoming active again.
    const db = openStore(join(relay.dataDir, 'relay.sqlite'));
    db.prepare('UPDATE appliances SET revoked_at = NULL WHERE id = ?').run(id);
    db.close();
    await waitFor('connected after the undo', () => link.status().state === 'connected', 5_000);
    expect(link.status().refusedReason).toBeNull();
  });

  it('stops when another computer keeps taking over this appliance\'s link (a copy of its keys)', async () => {
    const appliance = await enrolled();
    const args = { relayUrl: relay.url, applianceId: appliance.applianceId, tenantId: 'clinic-link', privateKey: appliance.signing.privateKey };
    const first = startLink(args);
    await waitFor('first connected', () => first.link.status().state === 'connected');
    // The copy: same appliance id, same device key, on "another computer".
    const copy = startLink(args);
    await waitFor('both stopped', () => first.link.status().state === 'refused' && copy.link.status().state === 'refused', 15_000);
    expect(first.link.status().refusedReason).toBe('another_computer');
    expect(copy.link.status().refusedReason).toBe('another_computer');
    // Neither keeps fighting for the link (each takeover would ack messages away from the other):
    // the relay holds both off and tells its operator.
    await sleep(500);
    expect(await relay.metric('relay_connected_appliances')).toBe(0);
    expect(await relay.metric('relay_appliance_conflicts_total')).toBe(1);
    expect(relay.logs()).toContain('two connections keep taking over one appliance identity');
  });

  it('reads an unknown device key as "not recognised" once it persists', async () => {
    const appliance = await enrolled();
    const { privateKey } = generateKeyPairSync('ed25519');
    const { link, statuses } = startLink({ relayUrl: relay.url, applianceId: appliance.applianceId, tenantId: 'clinic-link', privateKey }, { unrecognisedAfterMs: 300 });
    await waitFor('refused', () => link.status().state === 'refused');
    expect(link.status().refusedReason).toBe('not_recognised');
    // Until it persisted, an ordinary outage (the same answer comes right after a relay restart).
    expect(statuses.filter((s) => s.state === 'refused')).toHaveLength(1);
    expect(statuses.some((s) => s.state === 'offline')).toBe(true);
  });

  async function fakeRelay(status: number, body: string): Promise<{ url: string; hits(): number }> {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits += 1;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    return { url: `http://127.0.0.1:${address.port}`, hits: () => hits };
  }

  it('keeps a 5xx and a stranger\'s 401 an outage, retried with the usual backoff', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const down = await fakeRelay(503, JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'busy' } }));
    const proxy = await fakeRelay(401, '<html>Proxy login required</html>');
    const a = startLink({ relayUrl: down.url, applianceId: 'a-down', tenantId: 't', privateKey });
    const b = startLink({ relayUrl: proxy.url, applianceId: 'a-proxy', tenantId: 't', privateKey });
    await waitFor('both offline, retried', () => a.statuses.length >= 1 && b.statuses.length >= 1 && a.link.status().state === 'offline' && b.link.status().state === 'offline');
    // A 50-200 ms backoff keeps knocking, as it should for an outage.
    await waitFor('several attempts each', () => down.hits() >= 4 && proxy.hits() >= 4, 5_000);
    for (const { link, statuses } of [a, b]) {
      expect(link.status().state).toBe('offline');
      expect(statuses.some((s) => s.state === 'refused')).toBe(false);
    }
  });
});
