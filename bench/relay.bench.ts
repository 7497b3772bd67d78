// Relay benchmark: each figure beside a bare baseline measured in the same run, on loopback.
//  1. Throughput of signed webhooks through the whole relay path (verify, route, seal, durable
//     group commit, 200) against a bare node:http server that only reads the body, checks the HMAC
//     and answers 200. Same in-repo keep-alive load loop, same concurrency, same duration.
//     Target: relay >= 0.5 x bare.
//  2. Latency from POST to the appliance's ack at 200 webhooks/s with one appliance connected.
//     Baseline: POST -> 200 round trip of the bare server at the same rate. Target: p99 < 50 ms.
//  3. Resident memory of the relay process holding 5,000 authenticated appliance sockets.
//     Baseline: the same relay idle, and a bare `ws` server holding 5,000 plain sockets.
//     Target: < 300 MB; idle < 100 MB.
//  4. The same throughput driven by wrk (Debian's package, `bench/wrk/signedWebhook.lua` signs each
//     body in Lua), so the load generator is an established tool; skipped without `wrk`. Both
//     servers get a warm-up run (BENCH_WRK_WARMUP_MS, 5 s), then BENCH_ROUNDS (3) bare/relay pairs alternate; the figure
//     is the median pair's ratio, with the commit group sizes. BENCH_WRK_BASE=DIR (a compiled build,
//     e.g. the previous commit's dist/relay copied aside) is measured in every round too, in turns
//     with the current build, for a before/after in the same minutes.
//  5. On PostgreSQL (Debian's postgresql 15, started by relay/testing/postgres.ts): webhooks/s with
//     one and two instances (posts round-robin), and POST -> ack p99 at 200/s across two instances
//     (target < 100 ms); skipped without PostgreSQL.
// The bench's appliance announces envelope v2, as the real core does. Every relay runs as deployed:
// the compiled build (relay/build.mjs). BENCH_CPU_PROF=DIR writes a V8 CPU profile of each relay
// thread (main, queue writer, checkpointer) under DIR/<step>/ (the PostgreSQL step: DIR/postgres-<instances>/).
// BENCH_PERF=DIR records the wrk step's last round of each server with `perf record -e cpu-clock`
// (servers started with --perf-basic-prof) into DIR and prints the main thread's CPU by stage
// (bench/perfStages.ts): CPU samples, which V8's wall-clock profile is not.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { openStore, createTenant, issueEnrolmentCode, redeemEnrolmentCode } from '../relay/store';
import { TestPostgres } from '../relay/testing/postgres';
import { RelayProcess } from '../relay/testing/relayProcess';
import { metaJson, textMessageWebhook } from '../relay/testing/signWebhook';
import { TestAppliance } from '../relay/testing/testAppliance';
import { perfStages } from './perfStages';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const RATE = 200;
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 8_000);
const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 5_000);
const PHONE = '120000000000001';
const SECRET = 'bench-app-secret-0123456789abcdef';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A child process from inline ESM source that prints `PORT <n>` once it listens. */
function startInline(source: string, nodeArgs: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', source], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (c) => reject(new Error(`inline server exited ${c}`)));
  });
}

const BARE_HTTP = `
import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const given = Buffer.from(String(req.headers['x-hub-signature-256'] ?? '').slice(7), 'hex');
    const want = createHmac('sha256', process.env.SECRET).update(body).digest();
    if (given.length !== want.length || !timingSafeEqual(given, want)) { res.writeHead(401); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
`;

const BARE_WS = `
import http from 'node:http';
import { WebSocketServer } from 'ws';
const server = http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 65536 });
wss.on('connection', (ws) => ws.send('{"type":"welcome"}'));
server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
`;

let counter = 0;
function nextWebhook(): { body: Buffer; signature: string; wamid: string } {
  counter += 1;
  const wamid = `wamid.bench-${process.pid}-${counter}`;
  const body = Buffer.from(
    metaJson(textMessageWebhook({ phoneNumberId: PHONE, wamid, text: `Guten Tag, ich möchte meinen Termin am Donnerstag verschieben (${counter}).` })),
  );
  return { body, signature: `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, wamid };
}

function post(agent: http.Agent, port: number, w: { body: Buffer; signature: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/whatsapp',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': w.body.length, 'x-hub-signature-256': w.signature },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(w.body);
  });
}

/** N keep-alive loops posting back to back for a fixed time (round-robin over the ports); bounded in count and time. */
async function loadLoop(port: number | number[]): Promise<{ rps: number; ok: number; failed: number }> {
  const ports = Array.isArray(port) ? port : [port];
  let turn = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let ok = 0;
  let failed = 0;
  const warmupEnd = Date.now() + 1_000;
  let end = 0;
  const loop = async () => {
    while (end === 0 || Date.now() < end) {
      const status = await post(agent, ports[turn++ % ports.length]!, nextWebhook()).catch(() => 0);
      if (Date.now() >= warmupEnd && end === 0) end = warmupEnd + DURATION_MS;
      if (Date.now() < warmupEnd) continue;
      if (status === 200) ok += 1;
      else failed += 1;
      if (ok + failed > 2_000_000) break;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  agent.destroy();
  return { rps: ok / (DURATION_MS / 1000), ok, failed };
}

async function paced(count: number, send: (i: number) => Promise<void>): Promise<void> {
  const started = Date.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < count; i += 1) {
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    inflight.push(send(i));
  }
  await Promise.all(inflight);
}

/** BENCH_CPU_PROF=DIR writes a V8 CPU profile of each relay process there (`--cpu-prof`). */
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const profileArgs = (name: string) => (PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, name)}`] : []);

async function relayWithAppliance(
  name: string,
  env: Record<string, string> = {},
  build: { dir?: string; nodeArgs?: string[] } = {},
): Promise<{ relay: RelayProcess; appliance: TestAppliance }> {
  // As deployed (relay/deploy): the compiled build, without the TypeScript loader.
  const relay = await RelayProcess.start({
    appSecrets: [SECRET],
    compiled: true,
    buildDir: build.dir,
    nodeArgs: [...(build.nodeArgs ?? []), ...profileArgs(name)],
    env: { RELAY_LOG_LEVEL: 'warn', ...env },
  });
  await relay.createTenant({ tenantId: 'bench-clinic', phoneNumberIds: [PHONE] });
  const appliance = TestAppliance.create();
  await appliance.enrol(relay.url, await relay.issueEnrolmentCode('bench-clinic'));
  // Announces envelope v2 once (the relay keeps it per appliance), as a real core does.
  await appliance.connect(relay.wsUrl, { envelopeV2: true });
  appliance.close();
  await appliance.closed;
  return { relay, appliance };
}

const run = promisify(execFile);

/** CPU ms of each thread of a process so far (tid → ms); the main thread's tid is the pid. */
function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}
const CLOCK_TICKS = 100;

/**
 * CPU µs per answered request during a load run, per thread: the main thread, the busiest other
 * thread (the relay's queue writer) and the rest (V8's helpers, the checkpointer) together.
 */
function cpuPerRequest(pid: number, before: Map<number, number>, requests: number): { main: number; writer: number; rest: number; total: number } {
  const after = threadCpuMs(pid);
  const spent = [...after].map(([tid, ms]) => ({ tid, us: ((ms - (before.get(tid) ?? 0)) * 1000) / Math.max(1, requests) }));
  const main = spent.find((t) => t.tid === pid)?.us ?? 0;
  const others = spent.filter((t) => t.tid !== pid).sort((a, b) => b.us - a.us);
  const writer = others[0]?.us ?? 0;
  const rest = others.slice(1).reduce((a, t) => a + t.us, 0);
  return { main, writer, rest, total: main + writer + rest };
}

/**
 * wrk for `seconds` with the signing Lua script; the requests/s it reports (200s only count) and the
 * server's CPU per request. `record`: a file for `perf record` of the server during the run.
 */
async function wrkRps(
  port: number,
  pid: number,
  seconds = Math.round(DURATION_MS / 1000),
  record?: string,
): Promise<{ rps: number; requests: number; non200: number; cpu: ReturnType<typeof cpuPerRequest> }> {
  const before = threadCpuMs(pid);
  const perf = record ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '4000', '-g', '-p', String(pid), '-o', record, '--', 'sleep', String(seconds)], { stdio: 'ignore' }) : null;
  const { stdout } = await run(
    'wrk',
    ['-t2', `-c${CONCURRENCY}`, `-d${seconds}s`, '-s', join(import.meta.dirname, 'wrk', 'signedWebhook.lua'), `http://127.0.0.1:${port}`],
    { env: { ...process.env, WRK_SECRET: SECRET, WRK_PHONE: PHONE } },
  );
  const m = /WRK requests=(\d+) non2xx=(\d+) errors=(\d+) duration_us=(\d+)/.exec(stdout);
  if (!m) throw new Error(`wrk printed no summary:\n${stdout}`);
  const ok = Number(m[1]) - Number(m[2]) - Number(m[3]);
  if (perf) await new Promise((r) => perf.once('exit', r));
  return { rps: ok / (Number(m[4]) / 1e6), requests: Number(m[1]), non200: Number(m[2]) + Number(m[3]), cpu: cpuPerRequest(pid, before, Number(m[1])) };
}

/** BENCH_ROUNDS: bare and relay measured alternately this many times (the machine's load drifts between runs). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WRK_WARMUP_S = Math.max(1, Math.round(Number(process.env.BENCH_WRK_WARMUP_MS ?? 5_000) / 1000));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * BENCH_WRK_BASE=DIR: a compiled relay build to compare against (e.g. the previous commit's
 * `dist/relay`, copied aside), run beside the current one and measured in every round, in turns with
 * it, so old and new see the same minutes of load; BENCH_WRK_BASE_ARGS adds node flags to it only, and
 * BENCH_WRK_BASE_ENV environment variables (`NAME=value …`; `NAME=` unsets one the relay helper sets),
 * so an older build can run as it was deployed then.
 */
const WRK_BASE = process.env.BENCH_WRK_BASE;
const WRK_BASE_ARGS = (process.env.BENCH_WRK_BASE_ARGS ?? '').split(' ').filter(Boolean);
const WRK_BASE_ENV = Object.fromEntries((process.env.BENCH_WRK_BASE_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

type WrkResult = Awaited<ReturnType<typeof wrkRps>>;
interface WrkRelayRun {
  result: WrkResult;
  group: number;
  commitMs: number;
}

/** One wrk run against a relay, with its commit groups from the relay's metrics. */
async function wrkRelay(relay: RelayProcess, record?: string): Promise<WrkRelayRun> {
  const names = ['relay_commit_batch_size_count', 'relay_commit_batch_size_sum', 'relay_commit_seconds_sum'];
  const [groups0, webhooks0, seconds0] = await Promise.all(names.map((n) => relay.metric(n)));
  const result = await wrkRps(relay.port, relay.pid!, undefined, record);
  const [groups1, webhooks1, seconds1] = await Promise.all(names.map((n) => relay.metric(n)));
  return { result, group: (webhooks1! - webhooks0!) / (groups1! - groups0!), commitMs: ((seconds1! - seconds0!) * 1000) / (groups1! - groups0!) };
}

async function benchWrk(): Promise<void> {
  if (!(await run('sh', ['-c', 'command -v wrk']).then(() => true, () => false))) {
    rows.push(['throughput driven by wrk', 'skipped', 'wrk not installed (apt-get install wrk)', '', '']);
    return;
  }
  const PERF_DIR = process.env.BENCH_PERF;
  if (PERF_DIR) mkdirSync(PERF_DIR, { recursive: true });
  const perfArgs = PERF_DIR ? ['--perf-basic-prof'] : [];
  const bare = await startInline(BARE_HTTP, perfArgs);
  const { relay } = await relayWithAppliance('wrk', {}, { nodeArgs: perfArgs });
  const base = WRK_BASE ? (await relayWithAppliance('wrk-base', WRK_BASE_ENV, { dir: WRK_BASE, nodeArgs: [...WRK_BASE_ARGS, ...perfArgs] })).relay : null;
  // The last round of each server, recorded: [label, file, pid, requests].
  const recorded: [string, string, number, number][] = [];
  const recordAs = (round: number, name: string) => (PERF_DIR && round === ROUNDS - 1 ? join(PERF_DIR, `${name}.data`) : undefined);
  // Both servers run long in production: one short run each first, so neither is measured while
  // V8 still compiles its hot paths (the relay has many more of them than the bare server).
  // 2 s left the relay's first measured round an outlier (twice the CPU per webhook, commits of
  // 7-10 ms against 0.5-2 ms later), which a median of three then leaned on.
  await wrkRps(bare.port, bare.child.pid!, WRK_WARMUP_S);
  await wrkRps(relay.port, relay.pid!, WRK_WARMUP_S);
  if (base) await wrkRps(base.port, base.pid!, WRK_WARMUP_S);
  const pairs: { bare: WrkResult; relay: WrkRelayRun; base: WrkRelayRun | null; load: string }[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const bareResult = await wrkRps(bare.port, bare.child.pid!, undefined, recordAs(round, 'bare'));
    // With a base build, the two relays take turns at going first after the bare run.
    let baseRun: WrkRelayRun | null = null;
    if (base && round % 2 === 1) baseRun = await wrkRelay(base, recordAs(round, 'base'));
    const relayRun = await wrkRelay(relay, recordAs(round, 'relay'));
    if (base && round % 2 === 0) baseRun = await wrkRelay(base, recordAs(round, 'base'));
    if (recordAs(round, 'bare')) {
      recorded.push(['bare http+hmac', recordAs(round, 'bare')!, bare.child.pid!, bareResult.requests], ['relay', recordAs(round, 'relay')!, relay.pid!, relayRun.result.requests]);
      if (base && baseRun) recorded.push(['base build', recordAs(round, 'base')!, base.pid!, baseRun.result.requests]);
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
    pairs.push({ bare: bareResult, relay: relayRun, base: baseRun, load });
    const cpuText = (c: WrkResult['cpu']) => `${fmt(c.total, 0)} = ${fmt(c.main, 0)} + ${fmt(c.writer, 0)} + ${fmt(c.rest, 0)} µs`;
    console.log(
      `  round ${round + 1}: bare ${fmt(bareResult.rps, 0)}/s (${fmt(bareResult.cpu.total, 0)} µs), relay ${fmt(relayRun.result.rps, 0)}/s, ratio ${fmt(relayRun.result.rps / bareResult.rps, 2)}, ` +
        `${cpuText(relayRun.result.cpu)}, ${fmt(relayRun.group, 1)} webhooks per commit of ${fmt(relayRun.commitMs, 2)} ms` +
        (baseRun ? `; base ${fmt(baseRun.result.rps, 0)}/s, ratio ${fmt(baseRun.result.rps / bareResult.rps, 2)}, ${cpuText(baseRun.result.cpu)}` : '') +
        `, load ${load}`,
    );
  }
  bare.child.kill('SIGTERM');
  await relay.stop();
  await base?.stop();
  // The perf maps (/tmp/perf-<pid>.map) outlive the processes, so the samples resolve after they stopped.
  const stageRows: Row[] = [];
  for (const [label, file, pid, requests] of recorded) {
    const stages = perfStages(file, pid, requests);
    stageRows.push([
      `${label}: main thread's CPU by stage under wrk, µs per webhook (perf cpu-clock, last round, inflated by profiling)`,
      fmt(stages.reduce((a, s) => a + s.us, 0), 0),
      stages.map((s) => `${s.stage} ${fmt(s.us)}`).join(', '),
      `load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
      '',
    ]);
  }
  const report = (label: string, pick: (p: (typeof pairs)[number]) => WrkRelayRun) => {
    const ratios = pairs.map((p) => pick(p).result.rps / p.bare.rps);
    const ratio = median(ratios);
    const non200 = pairs.reduce((a, p) => a + pick(p).result.non200, 0);
    rows.push([
      `${label}throughput by wrk -t2 -c${CONCURRENCY}, signed in Lua, webhooks/s (median of ${ROUNDS} alternating pairs)`,
      fmt(median(pairs.map((p) => pick(p).result.rps)), 0) + (non200 ? ` (${non200} non-200)` : ''),
      `${fmt(median(pairs.map((p) => p.bare.rps)), 0)} bare http+hmac`,
      `ratio ${fmt(ratio, 2)} (${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}), load ${pairs.map((p) => p.load).join('/')}`,
      label ? '' : ratio >= 0.5 ? 'PASS (>= 0.5)' : 'FAIL (>= 0.5)',
    ]);
    const cpu = (f: (p: (typeof pairs)[number]) => number) => fmt(median(pairs.map(f)), 0);
    rows.push([
      `${label}CPU per webhook under wrk, µs (relay: main thread + queue writer + other threads; medians)`,
      `${cpu((p) => pick(p).result.cpu.total)} = ${cpu((p) => pick(p).result.cpu.main)} + ${cpu((p) => pick(p).result.cpu.writer)} + ${cpu((p) => pick(p).result.cpu.rest)}`,
      `${cpu((p) => p.bare.cpu.total)} bare (main ${cpu((p) => p.bare.cpu.main)})`,
      `${fmt(median(pairs.map((p) => pick(p).result.cpu.total / p.bare.cpu.total)), 2)} x bare`,
      '',
    ]);
    rows.push([
      `${label}webhooks per group commit under wrk (median)`,
      fmt(median(pairs.map((p) => pick(p).group)), 1),
      `commit ${fmt(median(pairs.map((p) => pick(p).commitMs)), 2)} ms`,
      '',
      '',
    ]);
  };
  report('', (p) => p.relay);
  if (base) report(`base build (${WRK_BASE}${WRK_BASE_ARGS.length ? ` ${WRK_BASE_ARGS.join(' ')}` : ''}${process.env.BENCH_WRK_BASE_ENV ? ` ${process.env.BENCH_WRK_BASE_ENV}` : ''}): `, (p) => p.base!);
  rows.push(...stageRows);
}

/** CPU ms (user + system) of a process, all its threads. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** CPU ms of a PostgreSQL cluster: the postmaster and every process it started (backends, WAL writer, …). */
function postgresCpuMs(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ms = processCpuMs(postmaster);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(fields[1]) === postmaster) ms += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ms;
}

/** Where the CPU of a stretch of webhooks went: relay processes and PostgreSQL, µs per webhook. */
function cpuMeter(relayPids: number[], dataDir: string) {
  const sample = () => ({ relay: relayPids.reduce((a, pid) => a + processCpuMs(pid), 0), pg: postgresCpuMs(dataDir) });
  const before = sample();
  return (webhooks: number) => {
    const after = sample();
    const per = (ms: number) => fmt((ms * 1000) / Math.max(1, webhooks), 0);
    return `CPU per webhook µs: relay ${per(after.relay - before.relay)} + PostgreSQL ${per(after.pg - before.pg)}`;
  };
}

async function benchPostgres(): Promise<void> {
  if (!existsSync('/usr/lib/postgresql/15/bin/initdb')) {
    rows.push(['PostgreSQL figures', 'skipped', 'no PostgreSQL 15 (apt-get install postgresql)', '', '']);
    return;
  }
  const pg = await TestPostgres.start();
  try {
    const env = { RELAY_LOG_LEVEL: 'warn', RELAY_CATCHUP_MS: '1000' };
    const figures: number[] = [];
    for (const n of [1, 2]) {
      const relays = await RelayProcess.cluster(n, { databaseUrl: await pg.createDatabase(`bench_${n}`), appSecrets: [SECRET], compiled: true, env, nodeArgs: profileArgs(`postgres-${n}`) });
      await relays[0]!.createTenant({ tenantId: 'bench-clinic', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relays[0]!.url, await relays[0]!.issueEnrolmentCode('bench-clinic'));
      await appliance.connect(relays[0]!.wsUrl, { envelopeV2: true });
      appliance.close();
      const r = await loadLoop(relays.map((x) => x.port));
      figures.push(r.rps);
      rows.push([
        `PostgreSQL, ${n} instance${n > 1 ? 's' : ''}: signed webhooks/s (${CONCURRENCY} conns round-robin)`,
        fmt(r.rps, 0) + (r.failed ? ` (${r.failed} non-200)` : ''),
        n === 1 ? 'same machine, same PostgreSQL' : `${fmt(r.rps / figures[0]!, 2)} x one instance`,
        `load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
        '',
      ]);
      if (n === 2) {
        // Latency across instances: the appliance on the first, posts alternating.
        await appliance.connect(relays[0]!.wsUrl, { envelopeV2: true });
        await relays[0]!.waitForQueued(0, 'bench-clinic', 120_000).catch(() => undefined);
        const before = appliance.deliveries.length;
        const count = Math.round((LATENCY_MS / 1000) * RATE);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
        const sentAt = new Map<string, number>();
        // POST -> 200 of each, to tell the commit's share of the latency from the delivery's.
        const answered: number[] = [];
        let non200 = 0;
        const pacedCpu = cpuMeter(relays.map((x) => x.pid!), pg.dataDir);
        await paced(count, async (i) => {
          const w = nextWebhook();
          const t0 = Date.now();
          sentAt.set(w.wamid, t0);
          if ((await post(agent, relays[i % 2]!.port, w)) !== 200) non200 += 1;
          answered.push(Date.now() - t0);
        });
        answered.sort((a, b) => a - b);
        const cpuUsed = pacedCpu(count);
        await appliance.waitUntil(() => appliance.deliveries.filter((d) => sentAt.has(wamidOf(d))).length >= count, 60_000, 'deliveries');
        const lat = appliance.deliveries.slice(before).filter((d) => sentAt.has(wamidOf(d))).map((d) => d.openedAt - sentAt.get(wamidOf(d))!);
        lat.sort((a, b) => a - b);
        agent.destroy();
        appliance.close();
        rows.push([
          `PostgreSQL, 2 instances: POST -> ack at ${RATE}/s, ms (${count}${non200 ? `, ${non200} non-200` : ''})`,
          `p50 ${fmt(quantile(lat, 0.5))} p99 ${fmt(quantile(lat, 0.99))} max ${fmt(lat.at(-1) ?? NaN)}`,
          `posts alternate; socket on the first; POST -> 200 p50 ${fmt(quantile(answered, 0.5))} p99 ${fmt(quantile(answered, 0.99))}`,
          `${cpuUsed}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
          quantile(lat, 0.99) < 100 ? 'PASS (p99 < 100 ms)' : 'FAIL (p99 < 100 ms)',
        ]);
      }
      await Promise.all(relays.map((x) => x.stop()));
    }
  } finally {
    await pg.destroy();
  }
}

const wamidOf = (d: { body: string }) =>
  (JSON.parse(d.body) as { entry: { changes: { value: { messages: { id: string }[] } }[] }[] }).entry[0]!.changes[0]!.value.messages[0]!.id;

type Row = [string, string, string, string, string];
const rows: Row[] = [];
const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function benchThroughput(): Promise<void> {
  const bare = await startInline(BARE_HTTP);
  const bareResult = await loadLoop(bare.port);
  bare.child.kill('SIGTERM');
  const { relay } = await relayWithAppliance('loop');
  const relayResult = await loadLoop(relay.port);
  await relay.stop();
  const ratio = relayResult.rps / bareResult.rps;
  rows.push([
    `throughput, signed webhooks/s (${CONCURRENCY} keep-alive conns, ${DURATION_MS / 1000}s)`,
    fmt(relayResult.rps, 0) + (relayResult.failed ? ` (${relayResult.failed} non-200)` : ''),
    `${fmt(bareResult.rps, 0)} bare http+hmac`,
    `ratio ${fmt(ratio, 2)}`,
    ratio >= 0.5 ? 'PASS (>= 0.5)' : 'FAIL (>= 0.5)',
  ]);
}

async function benchLatency(): Promise<void> {
  const count = Math.round((LATENCY_MS / 1000) * RATE);
  // Baseline: POST -> 200 from the bare server at the same rate.
  const bare = await startInline(BARE_HTTP);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const bareLat: number[] = [];
  await paced(count, async () => {
    const w = nextWebhook();
    const t0 = performance.now();
    await post(agent, bare.port, w);
    bareLat.push(performance.now() - t0);
  });
  bare.child.kill('SIGTERM');

  const { relay, appliance } = await relayWithAppliance('latency');
  await appliance.connect(relay.wsUrl, { envelopeV2: true });
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  let non200 = 0;
  await paced(count, async () => {
    const w = nextWebhook();
    sentAt.set(w.wamid, Date.now());
    if ((await post(agent, relay.port, w)) !== 200) non200 += 1;
  });
  await appliance.waitForDeliveries(count, 30_000);
  for (const d of appliance.deliveries) {
    const wamid = (JSON.parse(d.body) as { entry: { changes: { value: { messages: { id: string }[] } }[] }[] }).entry[0]!.changes[0]!.value.messages[0]!.id;
    // The test appliance acks as soon as it has opened the envelope, so openedAt is the ack time.
    lat.push(d.openedAt - sentAt.get(wamid)!);
  }
  appliance.close();
  agent.destroy();
  await relay.stop();
  lat.sort((a, b) => a - b);
  bareLat.sort((a, b) => a - b);
  rows.push([
    `latency POST -> appliance ack at ${RATE}/s, ms (${count} webhooks${non200 ? `, ${non200} non-200` : ''})`,
    `p50 ${fmt(quantile(lat, 0.5))} p99 ${fmt(quantile(lat, 0.99))} max ${fmt(lat.at(-1) ?? NaN)}`,
    `p50 ${fmt(quantile(bareLat, 0.5))} p99 ${fmt(quantile(bareLat, 0.99))} bare POST->200`,
    '',
    quantile(lat, 0.99) < 50 ? 'PASS (p99 < 50 ms)' : 'FAIL (p99 < 50 ms)',
  ]);
}

/** Opens sockets 100 at a time; one that neither opens nor fails within 10 s counts as failed. */
async function openSockets(count: number, open: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < count) {
        const i = next++;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 10_000)));
        await Promise.race([open(i), timeout]).catch(() => (failed += 1));
        clearTimeout(timer);
      }
    }),
  );
  if (failed) progress(`${failed} sockets failed to open`);
  return failed;
}

async function benchSockets(): Promise<void> {
  // Bare: a ws server holding the same number of plain sockets.
  const bare = await startInline(BARE_WS);
  const bareIdle = rssMb(bare.child.pid!);
  const bareSockets: WebSocket[] = [];
  await openSockets(SOCKETS, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${bare.port}`, { perMessageDeflate: false });
    bareSockets.push(ws);
    await new Promise((r, j) => {
      ws.once('message', r);
      ws.once('error', j);
    });
  });
  await sleep(1_000);
  const bareFull = rssMb(bare.child.pid!);
  progress(`bare ws holds ${bareSockets.length}`);
  for (const ws of bareSockets) ws.terminate();
  bare.child.kill('SIGTERM');

  // As deployed (relay/deploy): the compiled build, without the TypeScript loader.
  const relay = await RelayProcess.start({
    compiled: true,
    env: { RELAY_LOG_LEVEL: 'warn', RELAY_UNSIGNED_BURST: '1000000', RELAY_UNSIGNED_RATE_PER_MINUTE: '1000000' },
  });
  // Thousands of enrolments straight through the store, in one transaction: the bench measures
  // holding sockets, not enrolment (which has its own tests).
  const appliances = Array.from({ length: SOCKETS }, () => TestAppliance.create());
  const db = openStore(join(relay.dataDir, 'relay.sqlite'));
  db.transaction(() => {
    appliances.forEach((a, i) => {
      const tenantId = `bench-${i}`;
      createTenant(db, { id: tenantId, phoneNumberIds: [String(200_000_000 + i)], now: Date.now() });
      const { code } = issueEnrolmentCode(db, { tenantId, now: Date.now(), ttlMs: 3_600_000 });
      const r = redeemEnrolmentCode(db, {
        code,
        signingPublicKey: Buffer.from(a.signingPublicKey, 'base64url'),
        encryptionPublicKey: Buffer.from(a.encryptionPublicKey, 'base64url'),
        label: null,
        now: Date.now(),
      })!;
      a.adoptEnrolment({ tenantId, applianceId: r.appliance.id, relayEncryptionPublicKey: relay.relayPublicKey, phoneNumberIds: [String(200_000_000 + i)] });
    });
  })();
  db.close();
  await sleep(500);
  const relayIdle = rssMb(relay.pid!);
  progress('relay idle; connecting appliances');
  const t0 = Date.now();
  await openSockets(SOCKETS, (i) => appliances[i]!.connect(relay.wsUrl));
  const connectSecs = (Date.now() - t0) / 1000;
  await sleep(1_000);
  const connected = await relay.metric('relay_connected_appliances');
  const relayFull = rssMb(relay.pid!);
  progress(`relay holds ${connected}`);
  for (const a of appliances) a.ws?.terminate();
  await relay.stop();
  rows.push([
    `RSS with ${SOCKETS} authenticated appliance sockets, MB (${connected} connected in ${fmt(connectSecs)} s)`,
    fmt(relayFull),
    `${fmt(relayIdle)} relay idle; ${fmt(bareFull)} bare ws with ${SOCKETS} (idle ${fmt(bareIdle)})`,
    `+${fmt(((relayFull - relayIdle) * 1024) / SOCKETS)} KB/socket`,
    relayFull < 300 && connected === SOCKETS ? 'PASS (< 300 MB)' : 'FAIL (< 300 MB)',
  ]);
  rows.push(['RSS of an idle relay (SQLite, writer and checkpointer threads), MB', fmt(relayIdle), '', '', relayIdle < 100 ? 'PASS (< 100 MB)' : 'FAIL (< 100 MB)']);
}

function printTable(): void {
  const header: Row = ['figure', 'relay', 'baseline (same run)', 'note', 'target'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: Row) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.map(line).join('\n')}\n`);
}

const started = Date.now();
let reported = 0;
function progress(what: string): void {
  // Figures so far, as they come (a later step that fails or hangs does not lose them).
  for (; reported < rows.length; reported += 1) process.stderr.write(`  = ${rows[reported]!.join(' | ')}\n`);
  process.stderr.write(`[${fmt((Date.now() - started) / 1000)} s] ${what}\n`);
}
// BENCH_ONLY=throughput,latency,wrk,sockets,postgres runs some steps only (all by default).
const only = new Set((process.env.BENCH_ONLY ?? 'throughput,latency,wrk,sockets,postgres').split(','));
const steps: [string, () => Promise<void>][] = [
  ['throughput', benchThroughput],
  ['latency', benchLatency],
  ['wrk', benchWrk],
  ['sockets', benchSockets],
  ['postgres', benchPostgres],
];
for (const [name, step] of steps) {
  if (!only.has(name)) continue;
  progress(name);
  await step();
}
progress('done');
printTable();
process.stdout.write(`\nrelay bench finished in ${fmt((Date.now() - started) / 1000)} s\n`);
process.exit(rows.every((r) => r[4] === '' || r[4].startsWith('PASS')) ? 0 : 1);
