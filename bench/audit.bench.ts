// The auditor's desk at clinic scale: an audit log of 1,000,000 entries in a real SQLCipher file.
//
// Three measures, each against a bare baseline in the same run:
// 1. verifying the whole chain vs hashing the same bytes with SHA-256 alone (throughput ratio ≥ 0.5);
// 2. the auditor's filtered page (by patient, by user + time range, by action) p95 < 50 ms, vs a
//    page of the same size straight off the primary key;
// 3. what auditing costs a receptionist: opening a thread (`messages.list` through the one dispatch)
//    with the audit entry and the anomaly count vs without, p95 difference < 1 ms.
//
// The log is generated straight into the table (hashes computed, one transaction); no keychain is
// needed (a random key, as the repository tests use). CLINIC_BENCH_AUDIT_ENTRIES shrinks it.
import { hash as sha256 } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { WebhookSchema } from '../shared/whatsapp/webhook';
import { createAnomalies } from '../electron/core/accounts/anomalies';
import { DEFAULT_SECURITY_SETTINGS } from '../electron/core/accounts/service';
import { appendAudit, AUDIT_COLUMNS, chainHash, entryDigest, GENESIS_HASH, verifyAuditChain, type AuditRawRow } from '../electron/core/audit/auditLog';
import { queryAudit, toViews } from '../electron/core/audit/reports';
import type { Database } from '../electron/core/db/types';
import { applyWebhook } from '../electron/core/ingest/apply';
import { createDispatch, type Handlers } from '../electron/core/rpc/dispatch';
import { createHandlers } from '../electron/core/rpc/handlers';
import { createTestDb } from '../electron/core/testing/testDb';
import { testCaller } from '../electron/core/testing/users';
import { contact, webhookBody } from '../electron/core/testing/whatsappPayloads';
import type { AuditFilter } from '../shared/rpc';
import { percentiles, prng, time } from './stats';

const ENTRIES = Number(process.env.CLINIC_BENCH_AUDIT_ENTRIES ?? 1_000_000);
const CONTACTS = 20_000;
const USERS = 20;
const T0 = 1_700_000_000_000;
const SPAN = 2 * 365 * 86_400_000;
const STEP = Math.floor(SPAN / ENTRIES);

/** A clinic's log: mostly reads of one patient, sign-ins, sends, now and then an export. */
function generate(db: Database): void {
  const rand = prng(7);
  db.pragma('foreign_keys = OFF');
  const insContact = db.prepare('INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
  const insert = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (${AUDIT_COLUMNS.split(', ').map(() => '?').join(', ')})`);
  const side = db.prepare('INSERT INTO audit_contacts (contact_id, at, seq) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let c = 1; c <= CONTACTS; c += 1) insContact.run(c, `49151${String(c).padStart(8, '0')}`, `Patient ${c}`, T0, T0);
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= ENTRIES; seq += 1) {
      const u = Math.floor(rand() * USERS);
      const r = rand();
      const [action, method] = r < 0.75 ? ['read', 'messages.list'] : r < 0.85 ? ['send', 'messages.send'] : r < 0.95 ? ['login', 'auth.signIn'] : r < 0.999 ? ['update', 'conversations.setStatus'] : ['export', 'audit.export'];
      const contactIds = action === 'login' || action === 'export' ? [] : [1 + Math.floor(Math.pow(rand(), 2) * CONTACTS)];
      const at = T0 + seq * STEP;
      const row = {
        seq,
        at,
        user_id: `user-${u}`,
        display_name: `Receptionist ${u}`,
        role: 'receptionist',
        session_id: `s-${u}-${Math.floor(seq / 5000)}`,
        action,
        method,
        contact_ids: JSON.stringify(contactIds),
        origin: `desk-${u % 4}`,
        outcome: 'ok',
        error_code: null,
        reason: null,
        hash_version: 2,
        prev_hash: prev,
      };
      const hash = chainHash(prev, entryDigest(row));
      insert.run(...Object.values(row), hash);
      for (const id of contactIds) side.run(id, at, seq);
      prev = hash;
    }
  })();
  db.pragma('foreign_keys = ON');
  db.exec('ANALYZE');
}

/** (1) The whole chain vs SHA-256 over the same bytes (read beforehand, untimed). */
function chainBench(db: Database) {
  const t = performance.now();
  const verdict = verifyAuditChain(db);
  const verifyMs = performance.now() - t;
  if (!verdict.ok || verdict.entries !== ENTRIES) throw new Error(`generated chain does not verify: ${JSON.stringify(verdict)}`);
  let hashMs = 0;
  const page = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 100000`).raw();
  let prev = GENESIS_HASH;
  for (let after = 0; after < ENTRIES; after += 100_000) {
    const bodies = (page.all(after) as AuditRawRow[]).map((r) => JSON.stringify(r.slice(0, 13)));
    const s = performance.now();
    for (const body of bodies) prev = sha256('sha256', `${prev}\n${sha256('sha256', body, 'hex')}`, 'hex');
    hashMs += performance.now() - s;
  }
  return { verifyMs, hashMs, ratio: hashMs / verifyMs };
}

/** (2) The auditor's page of 100, by patient, by user + a week, by action; first pages and scrolled ones. */
function pageBench(db: Database) {
  const rand = prng(11);
  const week = 7 * 86_400_000;
  const cases: { name: string; filter: () => AuditFilter }[] = [
    { name: 'by patient', filter: () => ({ contactId: 1 + Math.floor(Math.pow(rand(), 2) * CONTACTS) }) },
    {
      name: 'by user + week',
      filter: () => {
        const from = T0 + Math.floor(rand() * (SPAN - week));
        return { userId: `user-${Math.floor(rand() * USERS)}`, from, to: from + week };
      },
    },
    { name: 'by action', filter: () => ({ action: (['export', 'login', 'update', 'read'] as const)[Math.floor(rand() * 4)]! }) },
  ];
  const rows: { name: string; p50: number; p95: number }[] = [];
  for (const c of cases) {
    const samples = time(() => {
      const filter = c.filter();
      const first = queryAudit(db, filter, { limit: 100 });
      toViews(db, first.rows);
      if (first.nextCursor) toViews(db, queryAudit(db, filter, { cursor: first.nextCursor, limit: 100 }).rows);
    }, 200).map((ms) => ms / 2);
    rows.push({ name: c.name, ...percentiles(samples) });
  }
  const pk = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq <= ? ORDER BY seq DESC LIMIT 100`).raw();
  const base = percentiles(time(() => pk.all(1 + Math.floor(rand() * ENTRIES)), 400));
  return { rows, base };
}

/** (3) `messages.list` through dispatch, with the audit entry (and anomaly count) vs without. */
async function overheadBench(db: Database) {
  const ts = 1_760_000_000;
  for (let c = 0; c < 200; c += 1) {
    const waId = `3161${String(c).padStart(7, '0')}`;
    const messages = Array.from({ length: 30 }, (_, k) => ({ from: waId, id: `wamid.BENCH${c}x${k}`, timestamp: String(ts + k), type: 'text', text: { body: `Bericht ${k}` } }));
    applyWebhook(db, WebhookSchema.parse(webhookBody({ contacts: [contact(`Bench ${c}`, waId)], messages })), { receivedAt: ts * 1000 });
  }
  const conversations = db.prepare('SELECT id FROM conversations ORDER BY id').pluck().all() as number[];
  const logger = pino({ level: 'silent' });
  const now = () => Date.now();
  const handlers = createHandlers({ db, now, link: {} as never, whatsapp: {} as never, recovery: {} as never, emit: () => undefined }) as Handlers;
  const anomalies = createAnomalies({ db, now, settings: () => DEFAULT_SECURITY_SETTINGS, audit: (r) => void appendAudit(db, r, now()), broadcast: () => undefined, logger });
  const inTransaction = db.transaction((fn: () => unknown) => fn());
  const atomically = <T>(fn: () => T): T => inTransaction(fn) as T;
  const on = createDispatch({
    handlers,
    audit: (record) => {
      appendAudit(db, record, now());
      anomalies.afterRead(record);
    },
    atomically,
    logger,
  });
  const off = createDispatch({ handlers: { ...handlers }, audit: () => undefined, atomically, logger });
  const callers = Array.from({ length: USERS }, (_, u) => testCaller({ userId: `bench-${u}`, displayName: `Bench ${u}`, roles: ['receptionist'] }, `desk-${u % 4}`));
  const rand = prng(5);
  const run = async (dispatch: typeof on, n: number) => {
    const samples: number[] = [];
    for (let i = 0; i < n; i += 1) {
      const caller = callers[Math.floor(rand() * callers.length)]!;
      const conversationId = conversations[Math.floor(rand() * conversations.length)]!;
      const t = performance.now();
      const result = await dispatch(caller, 'messages.list', { conversationId, limit: 50 });
      samples.push(performance.now() - t);
      if (!result.ok) throw new Error(`messages.list failed: ${result.error.code}`);
    }
    return samples;
  };
  // The disk's own price of one durable commit, which every audited call pays once.
  db.exec('CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, at INTEGER)');
  const commitOne = db.prepare('INSERT INTO bench_commit (at) VALUES (?)');
  const bare = async () => {
    const samples: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      const t = performance.now();
      atomically(() => commitOne.run(i));
      samples.push(performance.now() - t);
    }
    return samples;
  };
  const measure = async () => {
    await run(on, 50);
    await run(off, 50);
    // Interleaved rounds, so a noisy neighbour hits both alike.
    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    for (let round = 0; round < 10; round += 1) {
      a.push(...(await run(on, 100)));
      b.push(...(await run(off, 100)));
      c.push(...(await bare()));
    }
    return { on: percentiles(a), off: percentiles(b), commit: percentiles(c) };
  };
  const full = await measure();
  // The same without the fsync at each commit (synchronous=NORMAL): what auditing costs the CPU.
  db.pragma('synchronous = NORMAL');
  const normal = await measure();
  db.pragma('synchronous = FULL');
  return { full, normal };
}

const f = (n: number) => n.toFixed(n < 10 ? 2 : 1);

async function main(): Promise<void> {
  const t = createTestDb();
  try {
    let s = performance.now();
    generate(t.db);
    process.stdout.write(`audit log: ${ENTRIES.toLocaleString('en')} entries, ${CONTACTS.toLocaleString('en')} contacts, generated in ${((performance.now() - s) / 1000).toFixed(0)} s (SQLCipher)\n`);
    const phase = (name: string) => process.stderr.write(`… ${name} (${((performance.now() - s) / 1000).toFixed(0)} s)\n`);
    s = performance.now();
    const chain = chainBench(t.db);
    phase('chain walked');
    const pages = pageBench(t.db);
    phase('pages timed');
    const overhead = await overheadBench(t.db);
    phase('thread opening timed');
    const diff = overhead.full.on.p95 - overhead.full.off.p95;
    const ok = { chain: chain.ratio >= 0.5, pages: pages.rows.every((r) => r.p95 < 50), overhead: diff < 1 };

    process.stdout.write(
      `\n| measure | target | measured | baseline | ratio | ok |\n|---|---|---|---|---|---|\n` +
        `| verify chain of ${ENTRIES.toLocaleString('en')} entries | ≥ 0.5 of bare SHA-256 | ${f(chain.verifyMs)} ms (${Math.round(ENTRIES / (chain.verifyMs / 1000)).toLocaleString('en')}/s) | SHA-256 of the same bytes ${f(chain.hashMs)} ms | ${chain.ratio.toFixed(2)} | ${ok.chain ? 'yes' : 'NO'} |\n`,
    );
    for (const r of pages.rows) {
      process.stdout.write(
        `| auditor's page of 100, ${r.name} | p95 < 50 ms | p50 ${f(r.p50)} ms, p95 ${f(r.p95)} ms | 100 rows by primary key p50 ${f(pages.base.p50)} ms, p95 ${f(pages.base.p95)} ms | ${(r.p95 / pages.base.p95).toFixed(1)}× | ${r.p95 < 50 ? 'yes' : 'NO'} |\n`,
      );
    }
    for (const [label, o] of [['synchronous=FULL (as shipped)', overhead.full], ['synchronous=NORMAL (no fsync per commit)', overhead.normal]] as const) {
      const d = o.on.p95 - o.off.p95;
      process.stdout.write(
        `| open a thread (messages.list via dispatch), audited, ${label} | p95 − unaudited p95 < 1 ms | p50 ${f(o.on.p50)} ms, p95 ${f(o.on.p95)} ms | unaudited p50 ${f(o.off.p50)} ms, p95 ${f(o.off.p95)} ms; one bare 1-row commit p50 ${f(o.commit.p50)} ms, p95 ${f(o.commit.p95)} ms | +${f(d)} ms | ${d < 1 ? 'yes' : 'NO'} |\n`,
      );
    }
    process.exit(ok.chain && ok.pages && ok.overhead ? 0 : 1);
  } finally {
    t.cleanup();
  }
}

await main();
