// Privacy operations at clinic scale: a generated clinic of 1,000,000 messages / 20,000 contacts in
// which one patient has 10,000 messages (and 20 stored photos) and 30% of the messages belong to
// conversations whose last activity is more than two years old.
//
// - the patient's export (JSON + CSV + PDF + media, zipped and written): target < 10 s;
// - retention over the clinic (30% expired) against a bare DELETE of the same rows on an identical
//   copy, in the same run: throughput ratio ≥ 0.5, longest single hold of the database ≤ 50 ms.
//   Two baselines: (A) one DELETE statement per table in one transaction, with the schema's
//   triggers and the index's own secure-delete as the schema sets it (what a plain DELETE costs
//   here), and (B) the same with delete markers and one 'optimize' merge in that transaction (the
//   cheapest single transaction that leaves the index as clean as the run does);
// - the detector over clinic text: ≥ 5 MB/s;
// - erasing that patient as the RPC does (a worker thread, its own connection): the transaction
//   with the merge of the index shard that held them, then the checkpoint (until then the old
//   pages in the file hold the patient): < 1 s; and the longest an inbox query (the first page of conversations) on the
//   main thread's connection waits meanwhile, asked for every 5 ms (target ≤ 50 ms).
//
// No keychain needed (the database key is a bench-only random key beside the cache). The clinic is
// cached under `$TMPDIR/clinic-inbox-bench/privacy-…`; PRIVACY_BENCH_MESSAGES shrinks it.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { SCHEMA_VERSION } from '../electron/core/db/migrate';
import { openDatabase } from '../electron/core/db/open';
import { ALL_SHARDS, shardCommand, shardSegmentCount, withBulkIndexing } from '../electron/core/db/searchShards';
import type { Database } from '../electron/core/db/types';
import { detectPersonalData } from '../electron/core/privacy/detector';
import { listConversations } from '../electron/core/db/repo/conversations';
import { eraseInWorker } from '../electron/core/privacy/runErasure';
import type { ErasureReply, ErasureTask } from '../electron/core/privacy/erasureWorker';
import { writePatientExport } from '../electron/core/privacy/export';
import { runRetention, type RetentionHold } from '../electron/core/privacy/retention';
import { appendAudit, verifyAuditChain } from '../electron/core/audit/auditLog';
import { anchorPrune, pruneDue } from '../electron/core/audit/prune';
import { percentiles, prng, schedstatMs } from './stats';

const MESSAGES = Number(process.env['PRIVACY_BENCH_MESSAGES'] ?? 1_000_000);
const CONTACTS = 20_000;
const PATIENT_MESSAGES = 10_000;
const EXPIRED_SHARE = 0.3;
const NOW = Date.UTC(2026, 4, 11);
const DAY = 86_400_000;
// 3: Meta-shaped wamids (`metaWamid`), which sort a patient's messages together in the wamid indexes.
// 4: an audit log of one entry per message (`fillAudit`), 30% of it past the 5-year policy.
const GENERATOR = 4;
/** The audit policy's cut (1826 days, the default) and the share of the generated log past it. */
const AUDIT_CUT = NOW - 1826 * DAY;
const AUDIT_EXPIRED_SHARE = 0.3;
const cacheDir = join(tmpdir(), 'clinic-inbox-bench', `privacy-schema${SCHEMA_VERSION}-gen${GENERATOR}-${MESSAGES}`);
const dbFile = join(cacheDir, 'clinic.db');
const keyFile = join(cacheDir, 'bench.key');

const WORDS = (
  'afspraak recept uitslag praxis termin rezept befund appointment prescription results rendez-vous ordonnance ' +
  'morgen heute tomorrow demain bitte danke please merci pijn schmerzen pain douleur koorts fieber fever fièvre ' +
  'verschuiven absagen cancel annuler bevestigen bestätigen confirm confirmer huisarts hausarzt doctor médecin'
).split(' ');
// A long tail of rarer words, as real text has (as coreData.bench.ts does): with a few dozen words
// every token's posting list spans the whole index and each search-index delete rewrites pages of it.
for (let i = 0; i < 3000; i += 1) WORDS.push(`woord${i.toString(36)}`);

function sentence(rand: () => number): string {
  const n = 4 + Math.floor(rand() * 16);
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) out.push(WORDS[Math.floor(Math.pow(rand(), 3) * WORDS.length)]!);
  // Now and then a number a patient would write: a time, an amount, a (near-miss) order number, a phone.
  const r = rand();
  if (r < 0.05) out.push(`06-${String(10_000_000 + Math.floor(rand() * 89_999_999))}`);
  else if (r < 0.1) out.push(`bestelnummer ${Math.floor(rand() * 1e9)}`);
  else if (r < 0.2) out.push(`${8 + Math.floor(rand() * 9)}:30`);
  return out.join(' ') + '.';
}

/**
 * A message id shaped as Meta's Cloud API gives them (verified on the webhook vectors in
 * `shared/vectors/whatsapp/` and on the send responses in Meta's documentation): `wamid.` + base64
 * of a Thrift compact struct that begins with the contact's phone number — {1: {1: phone digits,
 * 2: 1}, 2: outbound (false for a message the patient sent), 3: hex id (20 digits inbound, 18
 * outbound)}. So one patient's ids share a prefix and sit together in the wamid indexes, as they do
 * in a real clinic; `wamid.P<id>` spread them among everyone's. The hex part is the message id
 * through an odd multiplier (a bijection, so unique), so it takes nothing
 * from `rand` and the rest of the data stays as it was.
 */
function metaWamid(phone: string, inbound: boolean, id: number): string {
  const digits = inbound ? 20 : 18;
  const hex = ((BigInt(id) * 0x9e3779b97f4a7c15n) % (1n << BigInt(digits * 4))).toString(16).toUpperCase().padStart(digits, '0');
  const struct = Buffer.concat([
    Buffer.from([0x1c, 0x18, phone.length]),
    Buffer.from(phone, 'ascii'),
    Buffer.from([0x15, 0x02, 0x00, inbound ? 0x12 : 0x11, 0x18, digits]),
    Buffer.from(hex, 'ascii'),
    Buffer.from([0x00]),
  ]);
  return `wamid.${struct.toString('base64')}`;
}

function fill(db: Database): void {
  const rand = prng(7);
  db.pragma('foreign_keys = OFF');
  const insContact = db.prepare('INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
  const insConv = db.prepare(
    `INSERT INTO conversations (id, contact_id, phone_number_id, status, unread_count, last_activity_at, last_inbound_at, last_message_id, created_at, updated_at)
     VALUES (?, ?, '110000000000001', 'open', 0, ?, ?, ?, ?, ?)`,
  );
  const insMsg = db.prepare(
    `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insStatus = db.prepare(`INSERT INTO message_statuses (wamid, status, status_at, raw_json, received_at, applied_at) VALUES (?, 'read', ?, '{}', ?, ?)`);
  const insMedia = db.prepare(`INSERT INTO media (media_id, message_id, mime_type, sha256, size, state, content, created_at, updated_at) VALUES (?, ?, 'image/jpeg', 'x', ?, 'stored', ?, ?, ?)`);
  const rest = MESSAGES - PATIENT_MESSAGES;
  const perContact = Math.floor(rest / (CONTACTS - 1));
  const expiredContacts = Math.round((CONTACTS - 1) * EXPIRED_SHARE);
  let id = 0;
  withBulkIndexing(db, () => db.transaction(() => {
    for (let c = 1; c <= CONTACTS; c += 1) {
      const phone = `31612${String(c).padStart(6, '0')}`;
      insContact.run(c, phone, `Patient ${c}`, NOW - 4 * 365 * DAY, NOW - 4 * 365 * DAY);
      const n = c === 1 ? PATIENT_MESSAGES : perContact + (c - 2 < rest - perContact * (CONTACTS - 1) ? 1 : 0);
      // Contacts 2..(1 + 30%): last activity three years ago; everyone else within the last year.
      const end = c >= 2 && c < 2 + expiredContacts ? NOW - 3 * 365 * DAY : NOW - Math.floor(rand() * 300) * DAY;
      const step = Math.floor((200 * DAY) / n);
      let last = 0;
      for (let k = 0; k < n; k += 1) {
        id += 1;
        const at = end - (n - 1 - k) * step;
        const inbound = rand() < 0.55;
        const text = sentence(rand);
        const wamid = metaWamid(phone, inbound, id);
        insMsg.run(id, c, wamid, inbound ? 'inbound' : 'outbound', 'text', text, JSON.stringify({ type: 'text', text: { body: text } }), at, at + 500, inbound ? 'received' : 'read');
        if (!inbound) insStatus.run(wamid, at + 1000, at + 1000, at + 1000);
        if (c === 1 && k % 500 === 0) insMedia.run(`media.P${id}`, id, 50_000, randomBytes(50_000), at, at);
        last = at;
      }
      insConv.run(c, c, last, last, id, NOW - 4 * 365 * DAY, last);
    }
  })());
  db.pragma('foreign_keys = ON');
}

/**
 * The clinic's audit log through the app's own append path (so the chain verifies): one entry per
 * message, the desk's users reading conversations, 1 in 10 without a patient (sign-ins, settings).
 * The first 30% lie between 6 years and 5 years 2 months ago (past the 5-year policy), the rest
 * spread over the 4 years 10 months since, in time order.
 */
function fillAudit(db: Database): void {
  const rand = prng(11);
  const entries = MESSAGES;
  const expired = Math.round(entries * AUDIT_EXPIRED_SHARE);
  const users = ['u_1', 'u_2', 'u_3', 'u_4', 'u_5', 'u_6'];
  const methods = ['messages.list', 'conversations.get', 'contacts.get', 'messages.send'];
  const atOf = (i: number) =>
    i < expired ? NOW - 6 * 365 * DAY + Math.floor((i / expired) * 300 * DAY) : AUDIT_CUT + 60 * DAY + Math.floor(((i - expired) / (entries - expired)) * (4.8 * 365 * DAY));
  const chunk = 20_000;
  for (let from = 0; from < entries; from += chunk) {
    db.transaction(() => {
      for (let i = from; i < Math.min(entries, from + chunk); i += 1) {
        const u = users[Math.floor(rand() * users.length)]!;
        const withPatient = rand() < 0.9;
        appendAudit(
          db,
          {
            userId: u,
            displayName: `Desk ${u}`,
            role: 'receptionist',
            sessionId: `s_${u}_${Math.floor(i / 200)}`,
            action: withPatient ? 'read' : 'login',
            method: withPatient ? methods[Math.floor(rand() * methods.length)]! : 'auth.signIn',
            contactIds: withPatient ? [1 + Math.floor(rand() * CONTACTS)] : [],
            origin: 'desk',
            outcome: 'ok',
          },
          atOf(i),
        );
      }
    })();
  }
}

function openClinic(path: string, key: Buffer): Database {
  return openDatabase({ path, key }).db;
}

function prepare(): Buffer {
  if (existsSync(join(cacheDir, 'done'))) return Buffer.from(readFileSync(keyFile, 'utf8'), 'hex');
  rmSync(cacheDir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(keyFile, key.toString('hex'), { mode: 0o600 });
  const t = performance.now();
  process.stdout.write(`generating ${MESSAGES.toLocaleString('en')} messages into ${cacheDir} …\n`);
  const db = openClinic(dbFile, key);
  fill(db);
  fillAudit(db);
  db.exec('ANALYZE');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  writeFileSync(join(cacheDir, 'done'), String(performance.now() - t));
  return key;
}

function copyOf(name: string): string {
  const path = join(cacheDir, `${name}.db`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  copyFileSync(dbFile, path);
  // On disk before anything is timed: otherwise the first fsync of the run (an erasure's
  // checkpoint, a retention commit) also writes back the whole freshly copied file.
  const fd = openSync(path, 'r+');
  fsyncSync(fd);
  closeSync(fd);
  return path;
}

const BENCH_SUBJECT = { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, origin: 'bench' };
const fmt = (n: number, d = 1) => n.toLocaleString('en', { maximumFractionDigits: d });
let failed = false;
function report(name: string, value: string, target: string, ok: boolean): void {
  if (!ok) failed = true;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name.padEnd(44)} ${value.padEnd(36)} target ${target}\n`);
}

async function exportBench(key: Buffer): Promise<void> {
  const db = openClinic(dbFile, key);
  const out = mkdtempSync(join(tmpdir(), 'clinic-privacy-export-'));
  try {
    const t = performance.now();
    const r = await writePatientExport(db, { contactId: 1, destinationDir: out, exportedBy: 'bench', now: NOW });
    const s = (performance.now() - t) / 1000;
    report(`export of a ${fmt(r.counts.messages, 0)}-message patient`, `${fmt(s, 2)} s, ${fmt(r.bytes / 1e6)} MB zip, ${r.counts.media} files`, '< 10 s', s < 10);
  } finally {
    db.close();
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * The same rows as the retention run (messages of the expired conversations, their statuses, the
 * emptied conversations; the audit entries past the policy with their `audit_contacts` rows) in
 * single statements, one transaction, on a copy. The audit log's trigger deletes only behind an
 * anchor, so the pruning's entry and anchor are written first, as the run does.
 */
function bareDelete(key: Buffer, name: string, merge: boolean): { rows: number; audit: number; ms: number } {
  const path = copyOf(name);
  const bare = openClinic(path, key);
  const cutoff = NOW - 730 * DAY;
  const expired = `SELECT id FROM conversations WHERE last_activity_at < ${cutoff}`;
  const t = performance.now();
  const due = pruneDue(bare, AUDIT_CUT);
  const through = due.count > 0 ? anchorPrune(bare, { ...due, cutAt: AUDIT_CUT, at: NOW, by: BENCH_SUBJECT }).throughSeq : 0;
  const { rows, audit } = bare.transaction(() => {
    if (merge) for (const k of ALL_SHARDS) shardCommand(bare, k, 'secure-delete', 0);
    bare.exec(`DELETE FROM message_statuses WHERE wamid IN (SELECT wamid FROM messages WHERE conversation_id IN (${expired}))`);
    const n = bare.prepare(`DELETE FROM messages WHERE conversation_id IN (${expired})`).run().changes;
    bare.exec(`DELETE FROM conversations WHERE last_activity_at < ${cutoff}`);
    if (merge) {
      for (const k of ALL_SHARDS) shardCommand(bare, k, 'optimize');
      for (const k of ALL_SHARDS) shardCommand(bare, k, 'secure-delete', 1);
    }
    bare.prepare('DELETE FROM audit_contacts WHERE seq <= ?').run(through);
    return { rows: n, audit: bare.prepare('DELETE FROM audit_log WHERE seq <= ?').run(through).changes };
  })();
  const ms = performance.now() - t;
  bare.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  return { rows, audit, ms };
}

/**
 * This thread's counters from /proc (Linux): time on a CPU and waiting for one (schedstat, ns),
 * bytes handed to write()/read() and read from the disk, context switches. Read before and after
 * each hold, so a hold's wall time splits into on-CPU, runnable-but-waiting and blocked.
 */
function threadProbe(): Record<string, number> {
  try {
    const { runMs, waitMs } = schedstatMs('self');
    const io = Object.fromEntries(readFileSync('/proc/thread-self/io', 'utf8').trim().split('\n').map((l) => { const [k, v] = l.split(': '); return [k!, Number(v)]; }));
    const status = readFileSync('/proc/thread-self/status', 'utf8');
    // The whole machine's steal time (the host running something else on our vCPUs), in 10 ms ticks.
    const steal = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).reduce((sum, l) => sum + Number(l.split(/\s+/)[8] ?? 0), 0);
    const ctxt = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return {
      runMs,
      waitMs,
      wchar: io['wchar'] ?? 0,
      syscw: io['syscw'] ?? 0,
      rchar: io['rchar'] ?? 0,
      syscr: io['syscr'] ?? 0,
      readBytes: io['read_bytes'] ?? 0,
      voluntary: ctxt('voluntary_ctxt_switches'),
      involuntary: ctxt('nonvoluntary_ctxt_switches'),
      stealMs: steal * 10,
    };
  } catch {
    return {};
  }
}

async function retentionBench(key: Buffer): Promise<void> {
  // RETENTION_BARE=skip while iterating on the run's holds (the bare DELETE takes minutes at 1M):
  // the ratios then read "not measured" and the bench exits with a failure.
  // RETENTION_BARE=a measures baseline A only (B is reported, not a target): a run under the
  // benchmark lock then takes ~6 minutes at 1M instead of ~10.
  const skipBare = process.env['RETENTION_BARE'] === 'skip';
  const skipB = skipBare || process.env['RETENTION_BARE'] === 'a';
  const notMeasured = { rows: Number.NaN, audit: Number.NaN, ms: Number.NaN };
  const a = skipBare ? notMeasured : bareDelete(key, 'bare-a', false);
  const b = skipB ? notMeasured : bareDelete(key, 'bare-b', true);
  const runPath = copyOf('retention');
  const db = openClinic(runPath, key);
  const holds: RetentionHold[] = [];
  const t = performance.now();
  const result = await runRetention(db, { now: () => NOW, trigger: 'manual', onHold: (h) => holds.push(h), probe: threadProbe });
  const runMs = performance.now() - t;
  const segments = ALL_SHARDS.map((k) => shardSegmentCount(db, k));
  const verdict = verifyAuditChain(db);
  db.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(runPath + suffix, { force: true });

  const share = result.counts.messages / MESSAGES;
  // Rows: the messages and the audit entries, the same on both sides.
  const ratio = (bare: { rows: number; audit: number; ms: number }) => (result.counts.messages + result.counts.audit) / runMs / ((bare.rows + bare.audit) / bare.ms);
  report('retention: messages removed', `${fmt(result.counts.messages, 0)} (${fmt(share * 100)}%) in ${fmt(runMs / 1000, 2)} s`, `= bare ${skipBare ? '(not measured)' : fmt(a.rows, 0)}`, result.counts.messages === a.rows && (skipB || a.rows === b.rows));
  report('retention: audit entries pruned', `${fmt(result.counts.audit, 0)} of ${fmt(result.counts.auditDue, 0)} past the policy`, `= bare ${skipBare ? '(not measured)' : fmt(a.audit, 0)}`, result.counts.audit === a.audit && (skipB || a.audit === b.audit) && result.counts.audit === result.counts.auditDue);
  report('retention: audit chain after the run', verdict.ok ? `verifies, ${fmt(verdict.entries, 0)} entries from #${fmt((verdict.prunedThrough ?? 0) + 1, 0)}` : `BROKEN at ${verdict.brokenAt}`, 'verifies', verdict.ok && verdict.prunedThrough !== undefined);
  report('retention vs bare DELETE (A, schema triggers)', `${fmt(ratio(a), 2)} (bare ${fmt(a.ms / 1000, 2)} s in one hold)`, '≥ 0.5', ratio(a) >= 0.5);
  report('retention vs bare DELETE + optimize (B)', `${fmt(ratio(b), 2)} (bare ${fmt(b.ms / 1000, 2)} s in one hold)`, '(reported)', true);
  report('retention: longest single hold', `${fmt(result.longestHoldMs, 1)} ms over ${fmt(result.batches, 0)} batches and steps`, '≤ 50 ms', result.longestHoldMs <= 50);
  report('retention: longest hold in CPU time', `${fmt(result.longestHoldCpuMs, 1)} ms`, '(reported)', true);
  report('retention: search index segments per shard after', `max ${Math.max(...segments)}`, '1 (purged)', Math.max(...segments) <= 1);
  report('retention: longest checkpoint between them', `${fmt(result.longestCheckpointMs, 1)} ms (no lock held)`, '(reported)', true);
  // Every hold and busy stretch by kind: which one is the long one, wall clock and CPU time.
  const kinds = [...new Set(holds.map((h) => h.kind))];
  for (const kind of kinds) {
    const of = holds.filter((h) => h.kind === kind);
    const wall = percentiles(of.map((h) => h.ms));
    const cpu = percentiles(of.map((h) => h.cpuMs));
    const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);
    const body = of.some((h) => h.bodyMs !== undefined)
      ? `; before COMMIT wall max ${fmt(max(of.map((h) => h.bodyMs ?? 0)), 1)}, cpu max ${fmt(max(of.map((h) => h.bodyCpuMs ?? 0)), 1)}; COMMIT cpu max ${fmt(max(of.map((h) => h.cpuMs - (h.bodyCpuMs ?? 0))), 1)}`
      : '';
    const rows = of.some((h) => h.rows !== undefined) ? `, rows p50 ${percentiles(of.map((h) => h.rows ?? 0)).p50} max ${max(of.map((h) => h.rows ?? 0))}` : '';
    const lock = of[0]!.locked ? 'write lock' : 'no lock';
    process.stdout.write(
      `     ${kind.padEnd(11)} ${lock.padEnd(10)} n ${String(wall.n).padStart(5)}  wall p50 ${fmt(wall.p50, 1)} p95 ${fmt(wall.p95, 1)} max ${fmt(max(of.map((h) => h.ms)), 1)} ms; cpu p50 ${fmt(cpu.p50, 1)} p95 ${fmt(cpu.p95, 1)} max ${fmt(max(of.map((h) => h.cpuMs)), 1)} ms${body}${rows}\n`,
    );
  }
  // The longest holds, their wall time split: this thread on a CPU, runnable but waiting for one,
  // and the rest blocked (I/O, a lock); what each wrote to the WAL and read from the file.
  const probedHolds = holds.filter((h) => h.locked && h.probed?.['runMs'] !== undefined);
  const longestHolds = [...probedHolds].sort((x, y) => y.ms - x.ms).slice(0, 6);
  const longestOnCpu = [...probedHolds].sort((x, y) => y.probed!['runMs']! - x.probed!['runMs']!).slice(0, 4);
  for (const h of [...new Set([...longestHolds, ...longestOnCpu])]) {
    const p = h.probed!;
    const blocked = h.ms - p['runMs']! - p['waitMs']!;
    process.stdout.write(
      `     longest: ${h.kind.padEnd(10)} wall ${fmt(h.ms, 1)} = on CPU ${fmt(p['runMs']!, 1)} + waiting for a core ${fmt(p['waitMs']!, 1)} + the rest ${fmt(blocked, 1)} ms (blocked, or the host's steal: ${fmt(p['stealMs']!, 0)} ms on the machine) (process CPU ${fmt(h.cpuMs, 1)}${h.bodyMs === undefined ? '' : `, before COMMIT ${fmt(h.bodyMs, 1)}`}); ` +
        `wrote ${fmt(p['wchar']! / 1024, 0)} KiB in ${p['syscw']} writes, read ${fmt(p['rchar']! / 1024, 0)} KiB in ${p['syscr']} reads (${fmt(p['readBytes']! / 1024, 0)} KiB from disk); switches ${p['voluntary']} voluntary ${p['involuntary']} involuntary${h.rows === undefined ? '' : `; rows ${h.rows}`}\n`,
    );
  }
  const sum = (f: (h: RetentionHold) => number) => probedHolds.reduce((t, h) => t + f(h), 0);
  process.stdout.write(
    `     all holds: ${probedHolds.length}, ${probedHolds.filter((h) => h.ms > 50).length} over 50 ms; on CPU ${fmt(sum((h) => h.probed!['runMs']!) / 1000, 2)} s, waiting for a core inside them ${fmt(sum((h) => h.probed!['waitMs']!) / 1000, 2)} s, the rest ${fmt(sum((h) => h.ms - h.probed!['runMs']! - h.probed!['waitMs']!) / 1000, 2)} s; run ${fmt(runMs / 1000, 1)} s\n`,
  );
  process.stdout.write(`     load ${execSync('uptime').toString().split('load average:')[1]!.trim()}\n`);
}

/**
 * The same erasure from the call to its answer, in the worker thread the app starts: the bundled
 * `out/main/erasureWorker.js` (`npx electron-vite build`). From source, `eraseInWorker` first
 * compiles the worker's modules under tsx, which the app never does; this row is the user's wait.
 */
async function builtWorkerErasure(key: Buffer): Promise<void> {
  const root = join(import.meta.dirname, '..');
  const built = join(root, 'out', 'main', 'erasureWorker.js');
  const sources = ['erasureWorker.ts', 'erasure.ts'].map((f) => join(root, 'electron', 'core', 'privacy', f));
  if (!existsSync(built) || sources.some((f) => statSync(f).mtimeMs > statSync(built).mtimeMs)) {
    process.stdout.write('     (the built erasure worker is missing or older than its source: `npx electron-vite build` first to time it)\n');
    return;
  }
  const path = copyOf('erasure-built');
  const task: ErasureTask = { path, key: key.toString('hex'), contactId: 1, erasedBy: 'bench', now: NOW };
  const t = performance.now();
  const reply = await new Promise<ErasureReply>((resolve, reject) => {
    const w = new Worker(built, { workerData: task });
    w.once('message', (r: ErasureReply) => {
      resolve(r);
      void w.terminate();
    });
    w.once('error', reject);
  });
  const wallMs = performance.now() - t;
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  const ok = reply.ok && reply.checkpoint.complete;
  report('erasure: call → answer, built worker (as the app)', reply.ok ? `${fmt(wallMs / 1000, 2)} s (worker's own ${fmt(reply.totalMs / 1000, 2)} s)` : `failed: ${reply.code}`, '< 1 s', ok && wallMs < 1000);
}

/**
 * Erasure of the 10,000-message patient on a copy, as `privacy.eraseContact` runs it: in a worker
 * thread on its own connection (the transaction with the index shard's merge, the checkpoint), while
 * this thread asks its own connection for the inbox's first page every 5 ms, as the core answers
 * every window.
 */
async function erasureBench(key: Buffer): Promise<void> {
  const path = copyOf('erasure');
  const db = openClinic(path, key);
  listConversations(db, { limit: 50 });
  let done = false;
  let worstWait = 0;
  let queries = 0;
  const inbox = (async () => {
    while (!done) {
      const due = performance.now() + 5;
      await new Promise((r) => setTimeout(r, 5));
      listConversations(db, { limit: 50 });
      queries += 1;
      worstWait = Math.max(worstWait, performance.now() - due);
    }
  })();
  const t = performance.now();
  const r = await eraseInWorker({ path, key: key.toString('hex'), contactId: 1, erasedBy: 'bench', now: NOW });
  const wallMs = performance.now() - t;
  done = true;
  await inbox;
  const left = db.prepare('SELECT count(*) FROM messages WHERE conversation_id = 1').pluck().get() as number;
  db.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  report(`erasure of a ${fmt(PATIENT_MESSAGES, 0)}-message patient (transaction)`, `${fmt(r.transactionMs, 0)} ms (rows and their index shard)`, '< 1 s', r.transactionMs < 1000 && left === 0);
  report('erasure: checkpoint', `${fmt(r.checkpointMs, 0)} ms, ${fmt(r.checkpoint.pages, 0)} pages written back${r.checkpoint.complete ? '' : ' (WAL not emptied)'}`, 'WAL emptied', r.checkpoint.complete);
  report('erasure: CPU time (transaction + checkpoint)', r.cpuMs === null ? 'n/a' : `${fmt(r.cpuMs, 0)} ms (the worker thread's)`, '(reported)', true);
  report('erasure: until no page holds the patient', `${fmt(r.totalMs / 1000, 2)} s (worker start included: ${fmt(wallMs / 1000, 2)} s)`, '< 1 s', r.totalMs < 1000 && r.checkpoint.complete);
  report('erasure: longest inbox wait (own connection)', `${fmt(worstWait, 1)} ms over ${queries} queries`, '≤ 50 ms', worstWait <= 50);
  process.stdout.write(`     load ${execSync('uptime').toString().split('load average:')[1]!.trim()}\n`);
}

function detectorBench(): void {
  const rand = prng(11);
  const labelled = readFileSync(join(import.meta.dirname, '..', 'electron', 'core', 'privacy', 'testdata', 'labelled.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const texts: string[] = [];
  let bytes = 0;
  while (bytes < 10_000_000) {
    const text = rand() < 0.2 ? labelled[Math.floor(rand() * labelled.length)]! : sentence(rand);
    texts.push(text);
    bytes += Buffer.byteLength(text);
  }
  for (const x of texts.slice(0, 2000)) detectPersonalData(x);
  // Best of three passes, wall clock and CPU time (on a loaded machine the wall clock also counts waiting for a core).
  let best = 0;
  let bestCpu = 0;
  let findings = 0;
  for (let pass = 0; pass < 3; pass += 1) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    findings = 0;
    for (const x of texts) findings += detectPersonalData(x).length;
    const s = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0).user / 1e6;
    best = Math.max(best, bytes / 1e6 / s);
    bestCpu = Math.max(bestCpu, bytes / 1e6 / cpu);
  }
  report('detector throughput (messages of clinic text)', `${fmt(best, 1)} MB/s (${fmt(bestCpu, 1)} per CPU-s; ${fmt(texts.length, 0)} msgs, ${fmt(findings, 0)} findings)`, '≥ 5 MB/s', best >= 5);
}

const AUDIT_PRUNE_ENTRIES = Number(process.env['AUDIT_PRUNE_ENTRIES'] ?? 200_000);

/**
 * Audit-log pruning (issue 11) on a log of its own (the generated clinic has no audit entries past
 * the policy): AUDIT_PRUNE_ENTRIES entries six years old and a tenth as many from last month. The
 * bare baseline writes the same anchor and deletes the same entries in one statement, one
 * transaction; the retention run deletes them in batches inside the 50 ms budget. Each on a copy
 * of the same file, bare and run alternated twice.
 */
async function auditPruneBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-audit-prune-'));
  const key = randomBytes(32);
  const source = join(dir, 'log.db');
  const db = openClinic(source, key);
  const entry = { userId: 'u_1', displayName: 'Bench', role: 'receptionist', sessionId: 's_1', action: 'read' as const, method: 'messages.list', origin: 'desk', outcome: 'ok' as const };
  db.transaction(() => {
    for (let i = 0; i < AUDIT_PRUNE_ENTRIES; i += 1) appendAudit(db, { ...entry, contactIds: [1 + (i % 500)] }, NOW - 6 * 365 * DAY + i);
    for (let i = 0; i < AUDIT_PRUNE_ENTRIES / 10; i += 1) appendAudit(db, { ...entry, contactIds: [1 + (i % 500)] }, NOW - 30 * DAY + i);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const copy = (name: string) => {
    const path = join(dir, `${name}.db`);
    copyFileSync(source, path);
    return openClinic(path, key);
  };
  const by = BENCH_SUBJECT;
  // Read right after each run, so each figure has the load it was measured under.
  const load = () => execSync('uptime').toString().trim().replace(/^.*load average: /, 'load ');
  const bare = (name: string) => {
    const b = copy(name);
    const cutAt = NOW - 1826 * DAY;
    const t = performance.now();
    const due = pruneDue(b, cutAt)!;
    const anchor = anchorPrune(b, { ...due, cutAt, at: NOW, by });
    const rows = b.transaction(() => {
      b.prepare('DELETE FROM audit_contacts WHERE seq <= ?').run(anchor.throughSeq);
      return b.prepare('DELETE FROM audit_log WHERE seq <= ?').run(anchor.throughSeq).changes;
    })();
    const ms = performance.now() - t;
    b.close();
    return { rows, ms };
  };
  const run = async (name: string) => {
    const r = copy(name);
    const holds: RetentionHold[] = [];
    const t = performance.now();
    const result = await runRetention(r, { now: () => NOW, trigger: 'manual', by, onHold: (h) => holds.push(h), probe: threadProbe });
    const ms = performance.now() - t;
    r.close();
    return { rows: result.counts.audit, ms, holds, result, load: load() };
  };
  try {
    const a1 = bare('bare-1');
    const r1 = await run('run-1');
    const a2 = bare('bare-2');
    const r2 = await run('run-2');
    const rate = (x: { rows: number; ms: number }) => x.rows / x.ms;
    for (const [i, [a, r]] of ([[a1, r1], [a2, r2]] as const).entries()) {
      report(`audit prune #${i + 1}: entries removed`, `${fmt(r.rows, 0)} in ${fmt(r.ms / 1000, 2)} s (${r.load})`, `= bare ${fmt(a.rows, 0)}`, r.rows === a.rows && a.rows === AUDIT_PRUNE_ENTRIES);
      report(`audit prune #${i + 1}: vs bare DELETE`, `${fmt(rate(r) / rate(a), 2)} (bare ${fmt(a.ms / 1000, 2)} s in one hold)`, '(reported)', true);
      report(`audit prune #${i + 1}: longest single hold`, `${fmt(r.result.longestHoldMs, 1)} ms (cpu ${fmt(r.result.longestHoldCpuMs, 1)})`, '≤ 50 ms', r.result.longestHoldMs <= 50);
      for (const kind of ['anchor', 'audit'] as const) {
        const of = r.holds.filter((h) => h.kind === kind);
        const wall = percentiles(of.map((h) => h.ms));
        process.stdout.write(`     ${kind.padEnd(11)} write lock n ${String(wall.n).padStart(5)}  wall p50 ${fmt(wall.p50, 1)} p95 ${fmt(wall.p95, 1)} max ${fmt(Math.max(...of.map((h) => h.ms)), 1)} ms; cpu max ${fmt(Math.max(...of.map((h) => h.cpuMs)), 1)} ms; rows max ${Math.max(...of.map((h) => h.rows ?? 0))}\n`);
      }
      // The longest audit batches and anchors, their wall time split per thread (on a CPU, waiting for one, the rest: blocked, e.g. on an fsync) and what they wrote.
      const audit = r.holds.map((h, at) => ({ h, at })).filter(({ h }) => (h.kind === 'audit' || h.kind === 'anchor') && h.probed?.['runMs'] !== undefined);
      for (const { h, at } of [...audit].sort((x, y) => y.h.ms - x.h.ms).slice(0, 4)) {
        const p = h.probed!;
        process.stdout.write(
          `     longest ${h.kind} (#${audit.findIndex((x) => x.at === at) + 1} of ${audit.length}): wall ${fmt(h.ms, 1)} = on CPU ${fmt(p['runMs']!, 1)} + waiting for a core ${fmt(p['waitMs']!, 1)} + the rest ${fmt(h.ms - p['runMs']! - p['waitMs']!, 1)} ms; before COMMIT ${fmt(h.bodyMs ?? 0, 1)} (cpu ${fmt(h.bodyCpuMs ?? 0, 1)}); wrote ${fmt(p['wchar']! / 1024, 0)} KiB, read ${fmt(p['rchar']! / 1024, 0)} KiB; rows ${h.rows}\n`,
        );
      }
      const between = r.holds.filter((h) => !h.locked);
      process.stdout.write(`     held in all ${fmt(r.holds.filter((h) => h.locked).reduce((t, h) => t + h.ms, 0) / 1000, 2)} s, busy unlocked ${fmt(between.reduce((t, h) => t + h.ms, 0) / 1000, 2)} s (${between.length} plans and checkpoints), run ${fmt(r.ms / 1000, 2)} s\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// BENCH_ONLY=detector,export,erasure,retention,auditprune runs some steps only (all by default).
async function main(): Promise<void> {
  const only = process.env['BENCH_ONLY'];
  if (only === 'auditprune') {
    await auditPruneBench();
    process.exit(failed ? 1 : 0);
  }
  const key = prepare();
  if (only) {
    if (only.includes('auditprune')) await auditPruneBench();
    if (only.includes('detector')) detectorBench();
    if (only.includes('export')) await exportBench(key);
    if (only.includes('erasure')) {
      await erasureBench(key);
      await builtWorkerErasure(key);
    }
    if (only.includes('retention')) await retentionBench(key);
    process.exit(failed ? 1 : 0);
  }
  detectorBench();
  await exportBench(key);
  await erasureBench(key);
  await builtWorkerErasure(key);
  await retentionBench(key);
  await auditPruneBench();
  process.exit(failed ? 1 : 0);
}

void main();
