// The appliance data layer at clinic scale: 1,000,000 messages, 20,000 contacts.
//
// Measures p50/p95 of the queries a receptionist waits on (inbox page, open a thread, search),
// core open (key from the OS keychain, migrations checked), and ingest throughput; each against a
// bare baseline in the same run: the same queries on an unencrypted copy through the same driver,
// and raw INSERTs of the same rows.
//
// Needs the OS keychain. On Linux run it inside a private D-Bus session with a throwaway keyring:
//   H=$(mktemp -d) && HOME=$H XDG_RUNTIME_DIR=$H dbus-run-session -- sh -c \
//     'eval "$(printf bench | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null; node --import tsx bench/coreData.bench.ts'; rm -rf "$H"
//
// The generated clinic (synthetic text, no patient data) is cached under the OS temp folder,
// keyed by schema and generator version, with its bench-only key beside it; delete
// `$TMPDIR/clinic-inbox-bench` to regenerate. CLINIC_BENCH_MESSAGES / CLINIC_BENCH_CONTACTS
// shrink it for a quick run.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import pino from 'pino';
import { WebhookSchema } from '../shared/whatsapp/webhook';
import { DATABASE_FILE, openCoreStore } from '../electron/core/db/coreStore';
import { migrate, SCHEMA_VERSION } from '../electron/core/db/migrate';
import { openDatabase } from '../electron/core/db/open';
import { listConversations, type ConversationFilter } from '../electron/core/db/repo/conversations';
import { listThread } from '../electron/core/db/repo/messages';
import { searchMessages } from '../electron/core/db/repo/search';
import type { Database } from '../electron/core/db/types';
import { applyWebhook } from '../electron/core/ingest/apply';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { loadOrCreateInstallationId } from '../electron/core/keys/installation';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { fillClinic, sentence } from './clinicData';
import { percentiles, prng, time } from './stats';

const MESSAGES = Number(process.env.CLINIC_BENCH_MESSAGES ?? 1_000_000);
const CONTACTS = Number(process.env.CLINIC_BENCH_CONTACTS ?? 20_000);
const GENERATOR = 2;
const cacheDir = join(tmpdir(), 'clinic-inbox-bench', `schema${SCHEMA_VERSION}-gen${GENERATOR}-${MESSAGES}x${CONTACTS}`);
const encPath = join(cacheDir, DATABASE_FILE);
const plainPath = join(cacheDir, 'plain.db');
const keyPath = join(cacheDir, 'bench.key');
const donePath = join(cacheDir, 'done');

function generate(): void {
  rmSync(cacheDir, { recursive: true, force: true });
  mkdirSync(cacheDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(keyPath, key.toString('hex'), { mode: 0o600 });
  let t = performance.now();
  const { db } = openDatabase({ path: encPath, key });
  fillClinic(db, MESSAGES, CONTACTS);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const encSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const plain = openPlain(plainPath);
  migrate(plain);
  fillClinic(plain, MESSAGES, CONTACTS);
  plain.pragma('wal_checkpoint(TRUNCATE)');
  plain.close();
  const plainSeconds = (performance.now() - t) / 1000;
  writeFileSync(donePath, JSON.stringify({ encSeconds, plainSeconds }));
}

/** The same driver and pragmas, without a key: the unencrypted baseline. */
function openPlain(path: string): Database {
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('secure_delete = ON');
  db.pragma('temp_store = MEMORY');
  db.pragma('foreign_keys = ON');
  return db;
}

type Row = { name: string; target: string; enc: ReturnType<typeof percentiles>; plain: ReturnType<typeof percentiles> | null; ok: boolean };
const rows: Row[] = [];

function queryBenches(enc: Database, plain: Database): void {
  const filters: ConversationFilter[] = [{ kind: 'all' }, { kind: 'unread' }, { kind: 'assigned', userId: 'user-3' }, { kind: 'resolved' }];
  // Cursors into the inbox at various depths (receptionists scroll), taken from the data itself.
  const cursorsFor = (db: Database) => {
    const out: (string | null)[] = [null];
    let c: string | null = null;
    for (let i = 0; i < 20; i += 1) {
      c = listConversations(db, { limit: 50, cursor: c }).nextCursor;
      if (!c) break;
      out.push(c);
    }
    return out;
  };
  const encCursors = cursorsFor(enc);
  const plainCursors = cursorsFor(plain);
  const inbox = (db: Database, cursors: (string | null)[]) => {
    const r = prng(1);
    return () => {
      const f = filters[Math.floor(r() * filters.length)]!;
      listConversations(db, { filter: f, limit: 50, cursor: f.kind === 'all' ? cursors[Math.floor(r() * cursors.length)] : null });
    };
  };
  const inboxEnc = percentiles(time(inbox(enc, encCursors), 400));
  rows.push({ name: 'inbox page (50 conversations, 4 filters, scrolled)', target: 'p95 < 10 ms', enc: inboxEnc, plain: percentiles(time(inbox(plain, plainCursors), 400)), ok: inboxEnc.p95 < 10 });

  const thread = (db: Database) => {
    const r = prng(2);
    return () => listThread(db, { conversationId: 1 + Math.floor(r() * CONTACTS), limit: 50 });
  };
  const threadEnc = percentiles(time(thread(enc), 400));
  rows.push({ name: 'open thread (last 50 messages)', target: 'p95 < 5 ms', enc: threadEnc, plain: percentiles(time(thread(plain), 400)), ok: threadEnc.p95 < 5 });

  const queries = ['termin', 'rezept', 'muller', 'überweisung', 'schmerzen knie', 'cafe', 'donnerstag verschieben', 'wort2a', 'wort1x', 'ter', 'attest labor', 'resume'];
  const search = (db: Database) => {
    const r = prng(3);
    return () => searchMessages(db, { query: queries[Math.floor(r() * queries.length)]!, limit: 30 });
  };
  const searchEnc = percentiles(time(search(enc), 300));
  rows.push({ name: 'full-text search (30 hits, accents folded)', target: 'p95 < 50 ms', enc: searchEnc, plain: percentiles(time(search(plain), 300)), ok: searchEnc.p95 < 50 });
  const scoped = (db: Database) => {
    const r = prng(4);
    return () => searchMessages(db, { query: queries[Math.floor(r() * queries.length)]!, conversationId: 1 + Math.floor(r() * CONTACTS), limit: 30 });
  };
  const scopedEnc = percentiles(time(scoped(enc), 300));
  rows.push({ name: 'search within one conversation', target: 'p95 < 50 ms', enc: scopedEnc, plain: percentiles(time(scoped(plain), 300)), ok: scopedEnc.p95 < 50 });
}

async function coreOpenBench(): Promise<string | null> {
  let secrets;
  try {
    secrets = await createKeytarSecretStore();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const installationId = loadOrCreateInstallationId(cacheDir);
  const accounts = keychainAccounts(installationId);
  await secrets.set(accounts.databaseKey, readFileSync(keyPath, 'utf8').trim());
  const logger = pino({ level: 'silent' });
  try {
    (await openCoreStore({ dataDir: cacheDir, secrets, logger })).close(); // first run makes the device keys
    const samples: number[] = [];
    for (let i = 0; i < 15; i += 1) {
      const t = performance.now();
      const store = await openCoreStore({ dataDir: cacheDir, secrets: await createKeytarSecretStore(), logger });
      samples.push(performance.now() - t);
      store.close();
    }
    const plainSamples = time(() => {
      const db = openPlain(plainPath);
      migrate(db);
      db.close();
    }, 15);
    const enc = percentiles(samples);
    rows.push({ name: 'core open (keychain → key, open, migrations checked)', target: '< 300 ms', enc, plain: percentiles(plainSamples), ok: enc.p95 < 300 });
  } finally {
    for (const account of Object.values(accounts)) await secrets.delete(account);
  }
  return null;
}

function ingestBench(): { perSecApply: number; perSecRaw: number; batchApply: number; batchRaw: number } {
  const dir = join(tmpdir(), `clinic-inbox-bench-ingest-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const N = 3000;
    const rand = prng(9);
    const bodies = Array.from({ length: N }, (_, i) =>
      JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '1', phone_number_id: '110000000000001' }, contacts: [{ profile: { name: `Patient ${i % 200}` }, wa_id: `4915100${i % 200}` }], messages: [{ from: `4915100${i % 200}`, id: `wamid.I${i}`, timestamp: String(1760000000 + i), type: 'text', text: { body: sentence(rand) } }] } }] }],
      }),
    );
    // One delivery = one webhook = one transaction, as the relay link commits them.
    const a = openDatabase({ path: join(dir, 'apply.db'), key: randomBytes(32) }).db;
    let t = performance.now();
    for (const b of bodies) applyWebhook(a, WebhookSchema.parse(JSON.parse(b)), { receivedAt: Date.now() });
    const perSecApply = N / ((performance.now() - t) / 1000);

    const r = openDatabase({ path: join(dir, 'raw.db'), key: randomBytes(32) }).db;
    r.exec(`INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES (1, '1', 0, 0); INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (1, 1, '1', 0, 0, 0)`);
    const ins = r.prepare(`INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (1, ?, 'inbound', 'text', ?, ?, ?, ?, 'received')`);
    const one = r.transaction((b: string) => {
      const m = JSON.parse(b).entry[0].changes[0].value.messages[0];
      ins.run(m.id, m.text.body, JSON.stringify(m), Number(m.timestamp) * 1000, Date.now());
    });
    t = performance.now();
    for (const b of bodies) one(b);
    const perSecRaw = N / ((performance.now() - t) / 1000);

    // Batched: 100 messages per webhook (Meta batches under load): CPU cost without the fsync.
    const batches: string[] = [];
    for (let i = 0; i < N; i += 100) {
      const parsed = bodies.slice(i, i + 100).map((b) => JSON.parse(b).entry[0].changes[0].value);
      batches.push(JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: { ...parsed[0], contacts: parsed.flatMap((p) => p.contacts), messages: parsed.flatMap((p) => p.messages).map((m) => ({ ...m, id: `${m.id}b` })) } }] }] }));
    }
    t = performance.now();
    for (const b of batches) applyWebhook(a, WebhookSchema.parse(JSON.parse(b)), { receivedAt: Date.now() });
    const batchApply = N / ((performance.now() - t) / 1000);
    const many = r.transaction((b: string) => {
      for (const m of JSON.parse(b).entry[0].changes[0].value.messages) ins.run(m.id, m.text.body, JSON.stringify(m), Number(m.timestamp) * 1000, Date.now());
    });
    t = performance.now();
    for (const b of batches) many(b);
    const batchRaw = N / ((performance.now() - t) / 1000);
    a.close();
    r.close();
    return { perSecApply, perSecRaw, batchApply, batchRaw };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (n: number) => n.toFixed(n < 10 ? 2 : 1);

async function main(): Promise<void> {
  if (!existsSync(donePath)) {
    process.stdout.write(`generating ${MESSAGES.toLocaleString('en')} messages / ${CONTACTS.toLocaleString('en')} contacts into ${cacheDir} …\n`);
    generate();
  }
  const gen = JSON.parse(readFileSync(donePath, 'utf8')) as { encSeconds: number; plainSeconds: number };
  const mb = (p: string) => (statSync(p).size / 1e6).toFixed(0);
  process.stdout.write(
    `clinic: ${MESSAGES.toLocaleString('en')} messages, ${CONTACTS.toLocaleString('en')} contacts; encrypted ${mb(encPath)} MB (generated in ${gen.encSeconds.toFixed(0)} s), plain ${mb(plainPath)} MB (${gen.plainSeconds.toFixed(0)} s)\n`,
  );
  const keyHex = readFileSync(keyPath, 'utf8').trim();
  const enc = openDatabase({ path: encPath, key: Buffer.from(keyHex, 'hex') }).db;
  const plain = openPlain(plainPath);
  queryBenches(enc, plain);
  enc.close();
  plain.close();
  const keychainProblem = await coreOpenBench();
  const ingest = ingestBench();

  process.stdout.write('\n| measure | target | SQLCipher p50 | p95 | plain p50 | p95 | encrypted/plain p95 | ok |\n|---|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(
      `| ${r.name} | ${r.target} | ${f(r.enc.p50)} ms | ${f(r.enc.p95)} ms | ${r.plain ? `${f(r.plain.p50)} ms` : '-'} | ${r.plain ? `${f(r.plain.p95)} ms` : '-'} | ${r.plain ? `${(r.enc.p95 / r.plain.p95).toFixed(2)}×` : '-'} | ${r.ok ? 'yes' : 'NO'} |\n`,
    );
  }
  if (keychainProblem) process.stdout.write(`| core open | < 300 ms | not measured: no keychain (${keychainProblem.slice(0, 80)}…) | | | | | NO |\n`);
  process.stdout.write(
    `\n| ingest (encrypted, synchronous=FULL) | messages/s | raw INSERT messages/s | ratio (target ≥ 0.25) |\n|---|---|---|---|\n` +
      `| 1 message per webhook, 1 transaction each (parse + applyWebhook) | ${ingest.perSecApply.toFixed(0)} | ${ingest.perSecRaw.toFixed(0)} | ${(ingest.perSecApply / ingest.perSecRaw).toFixed(2)} |\n` +
      `| 100 messages per webhook | ${ingest.batchApply.toFixed(0)} | ${ingest.batchRaw.toFixed(0)} | ${(ingest.batchApply / ingest.batchRaw).toFixed(2)} |\n`,
  );
  const failed = rows.some((r) => !r.ok) || keychainProblem !== null || ingest.perSecApply / ingest.perSecRaw < 0.25;
  process.exit(failed ? 1 : 0);
}

await main();
