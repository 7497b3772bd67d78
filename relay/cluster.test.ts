/**
 * Several relay instances (real processes) on one real PostgreSQL 15, as behind a load balancer:
 * an instance killed mid-burst, PostgreSQL itself crashing mid-burst, and two clinics on two
 * instances. "Meta" here posts signed webhooks round-robin and retries whatever did not get a 200.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from './testing/relayProcess';
import { TestPostgres } from './testing/postgres';
import { metaJson, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance, type Delivery } from './testing/testAppliance';
import { WS_CLOSE } from '../shared/wire';

const ENV = {
  RELAY_LOG_LEVEL: 'warn',
  RELAY_REVOCATION_POLL_MS: '200',
  RELAY_CATCHUP_MS: '300',
  RELAY_DATABASE_CHECK_MS: '200',
  RELAY_DATABASE_TIMEOUT_MS: '2000',
  RELAY_UNSIGNED_BURST: '100000',
};

let pg: TestPostgres;
let dbCounter = 0;
const freshDatabase = () => pg.createDatabase(`cluster_${process.pid}_${++dbCounter}`);

beforeAll(async () => {
  pg = await TestPostgres.start();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

const webhook = (phone: string, i: number) => metaJson(textMessageWebhook({ phoneNumberId: phone, wamid: `wamid.${phone}-${i}`, text: `Nachricht ${i}` }));
const wamidOf = (d: Delivery) => (JSON.parse(d.body) as { entry: { changes: { value: { messages: { id: string }[] } }[] }[] }).entry[0]!.changes[0]!.value.messages[0]!.id;

async function post(relay: RelayProcess, body: string): Promise<number | 'error'> {
  try {
    return (await relay.postWebhook(body)).status;
  } catch {
    return 'error';
  }
}

/** Meta's side: posts each body until some instance answers 200 (Meta retries for days). */
async function postUntilAccepted(relays: RelayProcess[], bodies: string[], alive: () => RelayProcess[]): Promise<void> {
  for (const body of bodies) {
    for (let attempt = 0; ; attempt += 1) {
      const targets = alive();
      if ((await post(targets[attempt % targets.length]!, body)) === 200) break;
      if (attempt > 200) throw new Error('a webhook was never accepted');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  void relays;
}

/** What the appliance's database would hold: one row per wamid (it is idempotent on seq and wamid). */
function byWamid(deliveries: Delivery[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const d of deliveries) {
    const w = wamidOf(d);
    out.set(w, (out.get(w) ?? new Set()).add(d.seq));
  }
  return out;
}

/** Keeps the appliance connected: when its socket closes it connects to another live instance. */
function keepConnected(appliance: TestAppliance, alive: () => RelayProcess[], first: RelayProcess): { stop(): void; connections: string[] } {
  let stopped = false;
  const connections: string[] = [];
  const connect = async (target: RelayProcess): Promise<void> => {
    for (let attempt = 0; !stopped; attempt += 1) {
      try {
        await appliance.connect(target.wsUrl);
        connections.push(target.url);
        void appliance.closed!.then(() => {
          if (stopped) return;
          const others = alive().filter((r) => r !== target);
          void connect(others.length > 0 ? others[attempt % others.length]! : target);
        });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
        const candidates = alive();
        target = candidates[(attempt + 1) % candidates.length]!;
      }
    }
  };
  void connect(first);
  return {
    connections,
    stop() {
      stopped = true;
      appliance.close();
    },
  };
}

describe('three relay instances on one PostgreSQL', () => {
  it('loses nothing when the instance holding the socket is SIGKILLed mid-burst: every 200 arrives once and the queue drains', async () => {
    const relays = await RelayProcess.cluster(3, { databaseUrl: await freshDatabase(), env: ENV });
    const killed = new Set<RelayProcess>();
    const alive = () => relays.filter((r) => !killed.has(r));
    try {
      const PHONE = '810000000000001';
      await relays[0]!.createTenant({ tenantId: 'clinic-k', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relays[1]!.url, await relays[0]!.issueEnrolmentCode('clinic-k'));
      const link = keepConnected(appliance, alive, relays[0]!);
      await appliance.waitUntil(() => link.connections.length === 1, 10_000, 'the first connection');

      const total = 300;
      const status = new Map<number, number | 'error'>();
      let next = 0;
      let killing: Promise<unknown> | null = null;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          status.set(i, await post(relays[i % 3]!, webhook(PHONE, i)));
          const ok = [...status.values()].filter((s) => s === 200).length;
          if (ok >= 90 && !killing) {
            killed.add(relays[0]!);
            killing = relays[0]!.kill('SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      await killing;
      const accepted = [...status].filter(([, s]) => s === 200).map(([i]) => i);
      const notAccepted = [...status].filter(([, s]) => s !== 200).map(([i]) => i);
      expect(accepted.length).toBeGreaterThanOrEqual(90);
      // Posts to the killed instance failed; Meta sends them again, to the instances left.
      await postUntilAccepted(relays, notAccepted.map((i) => webhook(PHONE, i)), alive);

      await appliance.waitUntil(() => byWamid(appliance.deliveries).size >= total, 60_000, `all ${total} webhooks delivered`);
      expect(link.connections.length).toBeGreaterThanOrEqual(2);
      expect(link.connections.slice(1)).not.toContain(relays[0]!.url);
      await relays[1]!.waitForQueued(0, 'clinic-k', 20_000);
      const got = byWamid(appliance.deliveries);
      for (const i of accepted) expect(got.has(`wamid.${PHONE}-${i}`)).toBe(true);
      // Exactly once: no webhook was queued under two seqs (redelivery of one seq is the
      // at-least-once the appliance absorbs).
      expect([...got.values()].filter((seqs) => seqs.size > 1)).toEqual([]);
      expect(appliance.openFailures).toBe(0);
      link.stop();
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
  }, 180_000);

  it('answers 503 while PostgreSQL is down (no 200 without a commit) and delivers everything 200\'d once it is back', async () => {
    const relays = await RelayProcess.cluster(2, { databaseUrl: await freshDatabase(), env: ENV });
    try {
      const PHONE = '820000000000001';
      await relays[0]!.createTenant({ tenantId: 'clinic-db', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relays[0]!.url, await relays[0]!.issueEnrolmentCode('clinic-db'));
      await appliance.connect(relays[0]!.wsUrl);

      const status = new Map<number, number | 'error'>();
      let next = 0;
      let phase: 'up' | 'down' | 'back' = 'up';
      const during = { down: [] as (number | 'error')[] };
      let stopAt = Infinity;
      const worker = async () => {
        while (next < stopAt) {
          const i = next++;
          const wasDown = phase === 'down';
          const s = await post(relays[i % 2]!, webhook(PHONE, i));
          status.set(i, s);
          if (wasDown && phase === 'down') during.down.push(s);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const workers = Promise.all(Array.from({ length: 6 }, worker));
      await appliance.waitUntil(() => [...status.values()].filter((s) => s === 200).length >= 60, 30_000, '60 accepted');
      await pg.stop({ mode: 'immediate' });
      phase = 'down';
      await new Promise((r) => setTimeout(r, 1_500));
      const ready = await Promise.all(relays.map(async (r) => (await fetch(`${r.url}/readyz`)).status));
      expect(await relays[0]!.metric('relay_database_up')).toBe(0);
      // From here PostgreSQL may accept commits again (pg_ctl start returns only after it does).
      phase = 'back';
      await pg.start();
      await appliance.waitUntil(() => [...status.values()].filter((s) => s === 200).length >= 150, 60_000, 'webhooks accepted again');
      stopAt = next;
      await workers;

      expect(ready).toEqual([503, 503]);
      // While the database was down nothing was acknowledged: every answer was 503 (or a
      // connection the instance refused), never a 200 for a commit that could not happen.
      expect(during.down.length).toBeGreaterThan(0);
      expect(during.down.filter((s) => s === 200)).toEqual([]);
      expect(during.down.filter((s) => s === 503).length).toBeGreaterThan(0);

      const total = next;
      const notAccepted = [...status].filter(([, s]) => s !== 200).map(([i]) => i);
      await postUntilAccepted(relays, notAccepted.map((i) => webhook(PHONE, i)), () => relays);
      await appliance.waitUntil(() => byWamid(appliance.deliveries).size >= total, 60_000, `all ${total} delivered`);
      await relays[1]!.waitForQueued(0, 'clinic-db', 20_000);
      expect([...byWamid(appliance.deliveries).values()].filter((seqs) => seqs.size > 1)).toEqual([]);
      expect((await fetch(`${relays[1]!.url}/readyz`)).status).toBe(200);
      appliance.close();
    } finally {
      if (process.env.CLUSTER_DEBUG) for (const r of relays) console.log(r.logs().slice(-4000));
      await pg.start();
      await Promise.all(relays.map((r) => r.stop()));
    }
  }, 240_000);

  it('keeps two clinics on two instances apart: neither appliance ever receives the other\'s envelopes', async () => {
    const relays = await RelayProcess.cluster(3, { databaseUrl: await freshDatabase(), env: ENV });
    try {
      const clinics = [
        { tenantId: 'clinic-x', phone: '830000000000001', appliance: TestAppliance.create(), at: relays[0]! },
        { tenantId: 'clinic-y', phone: '830000000000002', appliance: TestAppliance.create(), at: relays[2]! },
      ];
      for (const c of clinics) {
        await relays[1]!.createTenant({ tenantId: c.tenantId, phoneNumberIds: [c.phone] });
        await c.appliance.enrol(relays[1]!.url, await relays[1]!.issueEnrolmentCode(c.tenantId));
        await c.appliance.connect(c.at.wsUrl);
      }
      const n = 60;
      // All at once, round-robin; a 503 (pool or statement timeout under load) is retried, as Meta does.
      await Promise.all(
        Array.from({ length: n * 2 }, async (_, i) => {
          const c = clinics[i % 2]!;
          await postUntilAccepted(relays, [webhook(c.phone, i)], () => relays.slice(i % 3).concat(relays.slice(0, i % 3)));
        }),
      );
      for (const c of clinics) {
        await c.appliance.waitUntil(() => byWamid(c.appliance.deliveries).size >= n, 30_000, `${c.tenantId} delivered`);
        expect(c.appliance.openFailures).toBe(0);
        expect([...byWamid(c.appliance.deliveries).keys()].every((w) => w.startsWith(`wamid.${c.phone}-`))).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 500));
      for (const c of clinics) {
        expect(byWamid(c.appliance.deliveries).size).toBe(n);
        c.appliance.close();
      }
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
  }, 180_000);
});

describe('one appliance identity on two instances', () => {
  /** Connects and resolves with what the appliance saw first: the welcome, or the socket closing on it. */
  const connectOrClose = (a: TestAppliance, relay: RelayProcess) =>
    new Promise<'welcome' | { code: number }>((resolve, reject) => {
      a.connect(relay.wsUrl).then(() => resolve('welcome'), reject);
      void Promise.resolve().then(() => a.closed!.then((c) => resolve({ code: c.code })));
    });

  it('lets the newest connection win across instances, and holds two computers flapping over one identity off at both', async () => {
    const [a, b] = await RelayProcess.cluster(2, { databaseUrl: await freshDatabase(), env: ENV });
    const copies: TestAppliance[] = [];
    try {
      const PHONE = '840000000000001';
      await a!.createTenant({ tenantId: 'clinic-twin', phoneNumberIds: [PHONE] });
      const desk = TestAppliance.create();
      await desk.enrol(a!.url, await a!.issueEnrolmentCode('clinic-twin'));
      // A second computer with the same keys (the data folder restored elsewhere).
      const copy = desk.twin();
      copies.push(desk, copy);
      let i = 0;
      const postTo = async (relay: RelayProcess) => expect((await relay.postWebhook(webhook(PHONE, ++i))).status).toBe(200);

      // The desk at A receives what is posted to either instance.
      expect(await connectOrClose(desk, a!)).toBe('welcome');
      await postTo(a!);
      await postTo(b!);
      await desk.waitForDeliveries(2);

      // The copy connects at B: newest wins. A closes the desk's socket (4409) when the lease moves.
      expect(await connectOrClose(copy, b!)).toBe('welcome');
      expect((await desk.closed)!.code).toBe(WS_CLOSE.replaced);
      const deskHad = desk.deliveries.length;
      await postTo(a!);
      await postTo(b!);
      await copy.waitUntil(() => byWamid(copy.deliveries).has(`wamid.${PHONE}-4`), 10_000, 'the copy receives what came after the move');
      expect(desk.deliveries.length).toBe(deskHad);

      // The desk takes it back at A (second takeover): B closes the copy's socket.
      expect(await connectOrClose(desk, a!)).toBe('welcome');
      expect((await copy.closed)!.code).toBe(WS_CLOSE.replaced);
      await postTo(b!);
      await desk.waitUntil(() => byWamid(desk.deliveries).has(`wamid.${PHONE}-5`), 10_000, 'the desk receives the next one');
      const copyHad = copy.deliveries.length;
      expect(await a!.metric('relay_appliance_conflicts_total')).toBe(0);

      // The third takeover within 15 minutes: two computers hold one identity. Both are closed
      // with 4410 — the new socket at B, the desk's at A when it sees the lease cleared.
      expect(await connectOrClose(copy, b!)).toEqual({ code: WS_CLOSE.conflict });
      expect((await desk.closed)!.code).toBe(WS_CLOSE.conflict);
      expect((await a!.metric('relay_appliance_conflicts_total')) + (await b!.metric('relay_appliance_conflicts_total'))).toBe(1);
      expect(b!.logs()).toContain('two connections keep taking over one appliance identity');

      // Held off for an hour at every instance: upgrades get 401 RELAY_CONFLICT, and what Meta
      // sends meanwhile is kept (200, queued) and delivered to neither.
      for (const [who, at] of [[desk, a!], [copy, b!], [desk, b!]] as const) {
        await expect(who.connect(at.wsUrl)).rejects.toMatchObject({ status: 401 });
      }
      expect(await a!.metric('relay_ws_upgrades_refused_total', { reason: 'conflict' })).toBe(1);
      expect(await b!.metric('relay_ws_upgrades_refused_total', { reason: 'conflict' })).toBe(2);
      const deskHeld = desk.deliveries.length;
      await postTo(a!);
      await postTo(b!);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await a!.countQueued('clinic-twin')).toBeGreaterThanOrEqual(2);
      expect(desk.deliveries.length).toBe(deskHeld);
      expect(copy.deliveries.length).toBe(copyHad);
      expect(desk.openFailures + copy.openFailures).toBe(0);
    } finally {
      for (const c of copies) c.close();
      await Promise.all([a, b].map((r) => r!.stop()));
    }
  }, 120_000);
});
