// Booking and events (issue 14), each against a baseline in the same run.
// 1. Booking round trip through a real connection to a real core against the Google simulator:
//    free/busy re-check, event insert, the booking stored and audited. The appliance's own share is
//    the wall time minus the time the simulator itself measured inside its handlers for the calls
//    this booking made (`sim.apiCalls[].ms`, `sim.tokenCalls[].ms`). Target: p95 < 20 ms. Beside
//    it, the bare baseline of the one step no code change removes: a commit of one row (WAL,
//    synchronous=FULL, SQLCipher) in a database of its own on the same disk, taken after each booking.
// 2. Event fan-out: a backlog at a real relay drained by a core with no subscription and by one with
//    a local HTTPS subscriber to message.received, same size, same run. Targets: ingest ratio
//    ≥ 0.9, and the subscriber receives at least 1,000 events/s.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayProcess } from '../relay/testing/relayProcess';
import { createCore } from '../electron/core/createCore';
import { openDatabase } from '../electron/core/db/open';
import { startGoogleSimulator, SIM_CLIENT_ID } from '../electron/core/testing/googleSimulator';
import { startSeededCore } from '../electron/core/testing/seededCore';
import { adminConnection, rpc, signIn } from '../electron/core/testing/users';
import { quietLogger, startPairedCore, waitFor } from '../tests/helpers';
import { percentiles, schedstatMs } from './stats';

const BOOKINGS = Number(process.env['BENCH_BOOKINGS'] ?? 200);
const MESSAGES = Number(process.env['BENCH_FANOUT_MESSAGES'] ?? 10_000);
const PER_WEBHOOK = 10;
/** Rounds of the pair (without, with), alternating which goes first. */
const ROUNDS = Number(process.env['BENCH_FANOUT_ROUNDS'] ?? 2);
const progress = (line: string) => process.stderr.write(`booking bench: ${line}\n`);

/**
 * Per thread of this process (Linux /proc; zeros elsewhere): CPU seconds (utime + stime) and the
 * scheduler's account (`schedstat`: seconds on a CPU, seconds runnable but waiting for one). Wall
 * time less both is time asleep: in fsync, in SQLite's busy handler behind another connection's
 * write lock, or idle in the event loop.
 */
function threadTimes(): { main: { cpu: number; run: number; queued: number }; others: number } {
  const out = { main: { cpu: 0, run: 0, queued: 0 }, others: 0 };
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      // Fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 per second).
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(f[11]) + Number(f[12])) / 100;
      if (Number(tid) !== process.pid) {
        out.others += seconds;
        continue;
      }
      const { runMs, waitMs } = schedstatMs(Number(tid));
      out.main = { cpu: seconds, run: runMs / 1e3, queued: waitMs / 1e3 };
    }
  } catch {
    // not Linux
  }
  return out;
}

/** CPU seconds of another process and its threads (Linux /proc; 0 elsewhere). */
function processCpu(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function bookingRoundTrip(): Promise<Record<string, unknown>[]> {
  const sim = await startGoogleSimulator();
  const s = await startSeededCore({ core: { google: sim.endpoints() } });
  const bareDir = mkdtempSync(join(tmpdir(), 'clinic-bench-commit-'));
  const { db: bare } = openDatabase({ path: join(bareDir, 'bare.db'), key: randomBytes(32), migrate: false });
  bare.exec('CREATE TABLE probe (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const probe = bare.prepare('INSERT INTO probe (body) VALUES (?)');
  const probeBody = 'x'.repeat(600);
  try {
    const admin = await adminConnection(s.core);
    const { authorizeUrl } = await rpc(admin, 'calendar.connect', { clientId: SIM_CLIENT_ID });
    await fetch(await sim.consent(authorizeUrl));
    await waitFor('connected', async () => (await rpc(admin, 'calendar.status')).state === 'connected');
    await rpc(admin, 'calendar.updateSettings', {
      calendars: [{ id: 'primary', label: 'Room 1' }],
      rules: { slotMinutes: 5, bufferMinutes: 0, timeZone: 'UTC', hours: [0, 1, 2, 3, 4, 5, 6].map((day) => ({ day, from: '00:00', to: '23:55' })) },
    });
    const desk = await signIn(s.core, { username: 'bench-desk', displayName: 'Bench Desk', roles: ['receptionist'] });
    const [p1] = s.patients;
    const slots = (await rpc(desk, 'calendar.slots', { conversationId: p1.conversationId })).calendars[0]!.slots;
    // Some busy periods at Google, as a real diary has.
    for (let i = 0; i < 200; i++) sim.addBusy('primary', slots[BOOKINGS + 20 + 2 * i]!.start, slots[BOOKINGS + 20 + 2 * i]!.end);
    const wall: number[] = [];
    const own: number[] = [];
    const simulator: number[] = [];
    const commits: number[] = [];
    const cpu: number[] = [];
    let refreshes = 0;
    for (let i = 0; i < BOOKINGS + 10; i++) {
      const calls = sim.apiCalls.length;
      const tokens = sim.tokenCalls.length;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await rpc(desk, 'calendar.book', { conversationId: p1.conversationId, calendarId: 'primary', start: slots[i]!.start });
      const ms = performance.now() - t0;
      const cpuUs = process.cpuUsage(cpu0);
      const simMs = sim.apiCalls.slice(calls).reduce((a, c) => a + c.ms, 0) + sim.tokenCalls.slice(tokens).reduce((a, c) => a + c.ms, 0);
      const c0 = performance.now();
      probe.run(probeBody);
      const commitMs = performance.now() - c0;
      if (i < 10) continue; // warm-up: first token refresh, JIT
      refreshes += sim.tokenCalls.length - tokens;
      wall.push(ms);
      simulator.push(simMs);
      own.push(ms - simMs);
      commits.push(commitMs);
      // This process's CPU (the core and the simulator, which shares it) less the simulator's handlers.
      cpu.push((cpuUs.user + cpuUs.system) / 1000 - simMs);
    }
    const w = percentiles(wall);
    const o = percentiles(own);
    const g = percentiles(simulator);
    const c = percentiles(commits);
    const u = percentiles(cpu);
    return [
      { measure: 'booking round trip, wall (ms)', p50: w.p50.toFixed(2), p95: w.p95.toFixed(2), target: '—' },
      { measure: '  of which the simulator, inside its handlers (ms)', p50: g.p50.toFixed(2), p95: g.p95.toFixed(2), target: 'baseline' },
      { measure: '  the appliance’s own share (ms)', p50: o.p50.toFixed(2), p95: o.p95.toFixed(2), target: o.p95 < 20 ? 'met (< 20 ms p95)' : 'MISSED (< 20 ms p95)' },
      { measure: '  of which CPU in this process, less the simulator’s handlers (ms)', p50: u.p50.toFixed(2), p95: u.p95.toFixed(2), target: '—' },
      { measure: 'bare commit of one row, same disk, same run (ms)', p50: c.p50.toFixed(2), p95: c.p95.toFixed(2), target: 'baseline' },
      { measure: 'access-token refreshes during the measured bookings', p50: refreshes, p95: '', target: 'expected 0 (cached until expiry)' },
    ];
  } finally {
    bare.close();
    rmSync(bareDir, { recursive: true, force: true });
    await s.stop();
    await sim.close();
  }
}

function webhook(phone: string, first: number, tag: string): string {
  const messages = [];
  for (let i = first; i < Math.min(first + PER_WEBHOOK, MESSAGES); i++) {
    messages.push({ from: `49151${String(i % 2000).padStart(7, '0')}`, id: `wamid.FAN-${tag}-${i}`, timestamp: String(1760000000 + i), type: 'text', text: { body: `Termin ${i} bitte verschieben` } });
  }
  const contacts = messages.map((m) => ({ profile: { name: 'Patient' }, wa_id: m.from }));
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '100000000000001', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: phone, phone_number_id: phone }, contacts, messages } }] }],
  });
}

async function fill(relay: RelayProcess, phone: string, tag: string): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < MESSAGES) {
        const first = next;
        next += PER_WEBHOOK;
        const res = await relay.postWebhook(webhook(phone, first, tag));
        if (res.status !== 200) throw new Error(`relay answered ${res.status}`);
      }
    }),
  );
}

/** The subscriber in a child process, so its TLS and parsing do not share the core's thread. */
async function subscriberProcess(): Promise<{
  url: string;
  cert: string;
  pid: number | undefined;
  /** From now on it verifies each request's signature under this secret, as a practice-management system does. */
  verifyWith(secret: string): void;
  count(): Promise<number>;
  unique(): Promise<number>;
  /** Requests whose signature did not verify (answered 401). */
  forged(): Promise<number>;
  close(): Promise<void>;
}> {
  const child = fork(join(import.meta.dirname, '..', 'electron', 'core', 'testing', 'eventSubscriberMain.ts'), { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = await new Promise<{ url: string; cert: string }>((resolve) => child.once('message', (m) => resolve(m as { url: string; cert: string })));
  /** One of the figures the subscriber answers `count` with. */
  const counted = (field: 'count' | 'unique' | 'forged') =>
    new Promise<number>((resolve) => {
      child.once('message', (m) => resolve((m as Record<typeof field, number>)[field]));
      child.send('count');
    });
  return {
    ...first,
    pid: child.pid,
    verifyWith: (secret) => void child.send({ secret }),
    forged: () => counted('forged'),
    count: () => counted('count'),
    unique: () => counted('unique'),
    close: async () => {
      child.send('stop');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function fanOut(): Promise<Record<string, unknown>[]> {
  const relay = await RelayProcess.start();
  const subscriber = await subscriberProcess();
  const dirs = [mkdtempSync(join(tmpdir(), 'clinic-bench-fan-a-')), mkdtempSync(join(tmpdir(), 'clinic-bench-fan-b-'))] as const;
  const phones = ['110000000000001', '110000000000002'] as const;
  try {
    await relay.createTenant({ tenantId: 'plain', phoneNumberIds: [phones[0]] });
    await relay.createTenant({ tenantId: 'subscribed', phoneNumberIds: [phones[1]] });
    const coreOptions = { events: { ca: subscriber.cert } };
    await (await startPairedCore(relay, 'plain', { dataDir: dirs[0] })).close();
    const paired = await startPairedCore(relay, 'subscribed', { dataDir: dirs[1], ...coreOptions });
    subscriber.verifyWith((await rpc(await adminConnection(paired), 'events.create', { url: subscriber.url, events: ['message.received'] })).secret);
    await paired.close();

    interface Run {
      ingest: number;
      /** Distinct events received, and the ones received again (at least once). */
      delivered: number;
      duplicates: number;
      fanOut: number;
      lagSeconds: number;
      /** Events/s while ingest ran: received by the time the backlog was drained, over the ingest time. */
      ingestFanOut: number;
      /** Events/s once ingest had ended (the core idle), over the events still waiting then. */
      idleFanOut: number;
      elu: number;
      main: { cpu: number; run: number; queued: number; asleep: number };
      otherCpu: number;
      subscriberCpu: number;
      /** The same from the core's start to the last event received (the events sent after ingest too). */
      allOtherCpu: number;
      allSubscriberCpu: number;
      load: string;
    }
    const drain = async (i: 0 | 1, tenant: string, round: number): Promise<Run> => {
      await fill(relay, phones[i], `${tenant}${round}`);
      progress(`${tenant}: backlog of ${MESSAGES} at the relay`);
      const before = await subscriber.count();
      const uniqueBefore = await subscriber.unique();
      const elu0 = performance.eventLoopUtilization();
      const t0s = threadTimes();
      const sub0 = processCpu(subscriber.pid);
      const t0 = performance.now();
      const core = await createCore({ dataDir: dirs[i], logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' }, ...(i === 1 ? coreOptions : {}) });
      await waitFor('backlog drained', () => relay.queued(tenant) === 0, 600_000);
      const ingestSeconds = (performance.now() - t0) / 1000;
      // How busy the core's own thread was while it ingested, and the CPU of this process (all its threads).
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const t1s = threadTimes();
      const sub1 = processCpu(subscriber.pid);
      const ingestLoad = load();
      const atIngestEnd = i === 1 ? (await subscriber.unique()) - uniqueBefore : 0;
      if (i === 1) await waitFor('events delivered', async () => (await subscriber.unique()) - uniqueBefore >= MESSAGES, 600_000);
      const fanOutSeconds = (performance.now() - t0) / 1000;
      const t2s = threadTimes();
      const sub2 = processCpu(subscriber.pid);
      await core.close();
      const run = t1s.main.run - t0s.main.run;
      const queued = t1s.main.queued - t0s.main.queued;
      const distinct = (await subscriber.unique()) - uniqueBefore;
      return {
        ingest: MESSAGES / ingestSeconds,
        delivered: distinct,
        duplicates: (await subscriber.count()) - before - distinct,
        fanOut: distinct / fanOutSeconds,
        lagSeconds: fanOutSeconds - ingestSeconds,
        ingestFanOut: atIngestEnd / ingestSeconds,
        idleFanOut: i === 1 ? (distinct - atIngestEnd) / Math.max(0.001, fanOutSeconds - ingestSeconds) : 0,
        elu,
        main: { cpu: t1s.main.cpu - t0s.main.cpu, run, queued, asleep: ingestSeconds - run - queued },
        otherCpu: t1s.others - t0s.others,
        subscriberCpu: sub1 - sub0,
        allOtherCpu: t2s.others - t0s.others,
        allSubscriberCpu: sub2 - sub0,
        load: ingestLoad,
      };
    };
    // Alternated (without, with; with, without; …) so a neighbour's burst of load does not land on one side only.
    const runs: { plain: Run[]; subscribed: Run[] } = { plain: [], subscribed: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const i of round % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const)) {
        const r = await drain(i, i === 0 ? 'plain' : 'subscribed', round);
        (i === 0 ? runs.plain : runs.subscribed).push(r);
        progress(`round ${round + 1} ${i === 0 ? 'without' : 'with'}: ${Math.round(r.ingest)} messages/s${i === 1 ? `, ${r.delivered} events (+${r.duplicates} again), ${Math.round(r.fanOut)} events/s (${Math.round(r.ingestFanOut)} while ingesting), lag ${r.lagSeconds.toFixed(2)} s` : ''} (load ${r.load})`);
      }
    }
    const sum = (rs: Run[], f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0);
    // Rates over the rounds together: total messages over total time.
    const rate = (rs: Run[]) => (MESSAGES * rs.length) / sum(rs, (r) => MESSAGES / r.ingest);
    const ratio = rate(runs.subscribed) / rate(runs.plain);
    const fanOut = Math.min(...runs.subscribed.map((r) => r.fanOut));
    const idleFanOut = Math.min(...runs.subscribed.map((r) => r.idleFanOut));
    const ingestFanOut = Math.min(...runs.subscribed.map((r) => r.ingestFanOut));
    const pair = (f: (r: Run) => number, digits = 2) => `${(sum(runs.plain, f) / ROUNDS).toFixed(digits)} / ${(sum(runs.subscribed, f) / ROUNDS).toFixed(digits)}`;
    const rows: Record<string, unknown>[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [p, s] = [runs.plain[round]!, runs.subscribed[round]!];
      rows.push({ measure: `round ${round + 1}: ingest without / with (messages/s); load average while ingesting`, value: `${Math.round(p.ingest)} / ${Math.round(s.ingest)}`, target: `load ${p.load} / ${s.load}` });
      rows.push({ measure: `round ${round + 1}: fan-out (events/s: core start to last event; while ingesting; after ingest ended); lag after ingest (s)`, value: `${Math.round(s.fanOut)}; ${Math.round(s.ingestFanOut)}; ${Math.round(s.idleFanOut)}; ${s.lagSeconds.toFixed(2)}`, target: '—' });
    }
    rows.push(
      { measure: 'ingest, no subscription (messages/s, all rounds)', value: Math.round(rate(runs.plain)), target: 'baseline' },
      { measure: 'ingest, one HTTPS subscriber (messages/s, all rounds)', value: Math.round(rate(runs.subscribed)), target: '—' },
      { measure: 'ratio with / without', value: ratio.toFixed(2), target: ratio >= 0.9 ? 'met (≥ 0.9)' : 'MISSED (≥ 0.9)' },
      { measure: 'events delivered, signed, to the subscriber (events/s, slowest round)', value: Math.round(fanOut), target: fanOut >= 1000 ? 'met (≥ 1,000)' : 'MISSED (≥ 1,000)' },
      { measure: '  the same while ingest ran (events/s received by the end of ingest, slowest round)', value: Math.round(ingestFanOut), target: ingestFanOut >= 1000 ? 'met (≥ 1,000)' : 'MISSED (≥ 1,000)' },
      { measure: '  the same once ingest had ended, the core idle (events/s, slowest round)', value: Math.round(idleFanOut), target: idleFanOut >= 1000 ? 'met (≥ 1,000)' : 'MISSED (≥ 1,000)' },
      { measure: 'distinct events delivered / received again (all rounds)', value: `${sum(runs.subscribed, (r) => r.delivered)} / ${sum(runs.subscribed, (r) => r.duplicates)}`, target: `${MESSAGES * ROUNDS} expected` },
      { measure: 'requests whose signature the subscriber rejected (it verifies each on arrival)', value: await subscriber.forged(), target: 'expected 0' },
      { measure: 'events still undelivered when ingest ended: time to the last one (s, mean)', value: (sum(runs.subscribed, (r) => r.lagSeconds) / ROUNDS).toFixed(2), target: '—' },
      { measure: 'while ingesting, per round, without / with — core thread busy (event-loop utilisation)', value: pair((r) => r.elu), target: '—' },
      { measure: '  core thread CPU (s)', value: pair((r) => r.main.cpu), target: '—' },
      { measure: '  core thread runnable but waiting for a CPU (s)', value: pair((r) => r.main.queued), target: '—' },
      { measure: '  core thread asleep: fsync, lock waits, idle (s)', value: pair((r) => r.main.asleep), target: '—' },
      { measure: '  CPU of its other threads: events worker, SQLite, libuv (s)', value: pair((r) => r.otherCpu), target: '—' },
      { measure: '  CPU of the subscriber’s process (s)', value: pair((r) => r.subscriberCpu), target: '—' },
      {
        measure: 'CPU per event delivered, core start to last event (µs): the events worker (other threads, with less without); the subscriber',
        value: `${Math.round(((sum(runs.subscribed, (r) => r.allOtherCpu) - sum(runs.plain, (r) => r.allOtherCpu)) * 1e6) / sum(runs.subscribed, (r) => r.delivered))}; ${Math.round((sum(runs.subscribed, (r) => r.allSubscriberCpu) * 1e6) / sum(runs.subscribed, (r) => r.delivered))}`,
        target: '—',
      },
    );
    return rows;
  } finally {
    await subscriber.close();
    await relay.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

// BENCH_ONLY=booking,fanout runs some steps only (both by default).
const only = new Set((process.env['BENCH_ONLY'] ?? 'booking,fanout').split(','));
if (only.has('booking')) {
  progress('booking round trip');
  console.table(await bookingRoundTrip());
}
if (only.has('fanout')) {
  progress('event fan-out');
  console.table(await fanOut());
}
console.log(`bookings: ${BOOKINGS} after 10 warm-up; fan-out: ${MESSAGES} messages per run from 2,000 patients, ${PER_WEBHOOK} per webhook, ${ROUNDS} rounds of each`);
