// "Export diagnostics" holds no patient data: patients with names, numbers and messages come in
// through ingest, staff work with them (open, search, note, reply that fails to send), and the zip
// the admin exports — and the rotating log files it draws on — are scanned for every one of them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../shared/whatsapp/webhook';
import { createCore, type CoreHandle } from '../electron/core/createCore';
import { DATABASE_FILE } from '../electron/core/db/coreStore';
import { openDatabase } from '../electron/core/db/open';
import { applyWebhook } from '../electron/core/ingest/apply';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { loadOrCreateCoreKeys } from '../electron/core/keys/coreKeys';
import { loadOrCreateInstallationId } from '../electron/core/keys/installation';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { createCoreLogger, LOG_DIR } from '../electron/core/settings/logFile';
import { contact, wamid, webhookBody } from '../electron/core/testing/whatsappPayloads';
import { TEST_HASH_COST, adminConnection, rpc, signIn } from '../electron/core/testing/users';

const PATIENTS = [
  { name: 'Annelies Vermeulen', waId: '31612345678', text: 'Mijn dochter heeft koorts sinds dinsdag, kunnen we langskomen?' },
  { name: 'Jürgen Habermeyer', waId: '4915112345678', text: 'Ich brauche ein neues Rezept für Metformin 500' },
  { name: 'Siobhan O’Connell', waId: '447700900123', text: 'Can I move my smear test to Thursday afternoon' },
  { name: 'Zoë Müller', waId: '4917098765432', text: 'Befund Schilddrüse bitte per Post schicken' },
];
const NOTE = 'Allergic to penicillin, prefers Dutch';
const REPLY = 'Komt u morgen om 10:40 naar de praktijk';
const SEARCH = 'Metformin';

let dir: string;
let core: CoreHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'clinic-diagnostics-'));
  const secrets = await createKeytarSecretStore();
  const installationId = loadOrCreateInstallationId(dir);
  const keys = await loadOrCreateCoreKeys(secrets, installationId, { databaseExists: false, dataDir: dir });
  const { db } = openDatabase({ path: join(dir, DATABASE_FILE), key: keys.databaseKey });
  const ts = Math.floor(Date.now() / 1000) - 600;
  for (const [i, p] of PATIENTS.entries()) {
    const message = { from: p.waId, id: wamid('diag'), timestamp: String(ts + i), type: 'text', text: { body: p.text } };
    applyWebhook(db, WebhookSchema.parse(webhookBody({ contacts: [contact(p.name, p.waId)], messages: [message] })), { receivedAt: (ts + i) * 1000 });
  }
  db.close();
  core = await createCore({ dataDir: dir, secrets, logger: createCoreLogger({ dataDir: dir, level: 'debug', stdout: false }), policyPath: null, passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' } });

  const desk = await signIn(core, { username: 'desk', displayName: 'Front Desk', roles: ['receptionist'] });
  const list = await rpc(desk, 'inbox.listConversations', {});
  for (const c of list.items) await rpc(desk, 'messages.list', { conversationId: c.id });
  const first = list.items[0]!;
  const conversation = await rpc(desk, 'conversations.get', { conversationId: first.id });
  await rpc(desk, 'contacts.update', { contactId: conversation.contact.id, notes: NOTE });
  await rpc(desk, 'search.messages', { query: SEARCH });
  await desk.dispatch('messages.send', { conversationId: first.id, text: REPLY });
  // Failed look-ups log too: give them a name and a number to leak.
  await desk.dispatch('search.messages', { query: PATIENTS[0]!.waId });
  await new Promise((r) => setTimeout(r, 500));
});

afterAll(async () => {
  await core.close();
  const secrets = await createKeytarSecretStore();
  for (const account of Object.values(keychainAccounts(core.installationId))) await secrets.delete(account).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** Each seeded value, and the parts of it a log might carry alone (a first name, the number without its country code). */
function needles(): string[] {
  const out = new Set<string>([NOTE, REPLY, SEARCH]);
  for (const p of PATIENTS) {
    out.add(p.name);
    for (const part of p.name.split(' ')) if (part.length >= 4) out.add(part);
    out.add(p.waId);
    out.add(p.waId.slice(2));
    out.add(p.text);
    out.add(p.text.split(' ').slice(0, 4).join(' '));
  }
  return [...out];
}

describe('Export diagnostics', () => {
  it('gives an admin a zip of versions, settings, log, metrics and status, with no patient name, number or text in it', async () => {
    const admin = await adminConnection(core);
    const exported = await rpc(admin, 'diagnostics.export');
    expect(exported.filename).toMatch(/^clinic-inbox-diagnostics-\d{8}T\d{6}\.zip$/);
    const files = unzipSync(Buffer.from(exported.zipBase64, 'base64'));
    expect(Object.keys(files).sort()).toEqual(['log.txt', 'metrics.json', 'settings.json', 'status.json', 'versions.json']);
    const text = Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, strFromU8(bytes)]));

    // It is useful: the log has the core's lines, the metrics count the seeded rows, the status is there.
    expect(text['log.txt']!.split('\n').length).toBeGreaterThan(5);
    expect(JSON.parse(text['metrics.json']!).rows).toMatchObject({ contacts: PATIENTS.length });
    expect(JSON.parse(text['status.json']!)).toMatchObject({ keychainBackend: expect.any(String), outbox: expect.any(Object) });
    expect(JSON.parse(text['versions.json']!)).toMatchObject({ app: expect.any(String), sqlite: expect.any(String), cipher: 'sqlcipher' });

    const found: string[] = [];
    for (const needle of needles()) for (const [name, body] of Object.entries(text)) if (body.toLowerCase().includes(needle.toLowerCase())) found.push(`${name}: ${needle}`);
    expect(found).toEqual([]);
  });

  it('keeps the rotating log files free of them too, readable by this user alone', () => {
    const logDir = join(dir, LOG_DIR);
    const found: string[] = [];
    for (const file of readdirSync(logDir)) {
      expect(statSync(join(logDir, file)).mode & 0o777).toBe(0o600);
      const body = readFileSync(join(logDir, file), 'utf8').toLowerCase();
      for (const needle of needles()) if (body.includes(needle.toLowerCase())) found.push(`${file}: ${needle}`);
    }
    expect(found).toEqual([]);
    expect(statSync(logDir).mode & 0o777).toBe(0o700);
    for (const suffix of ['', '-wal', '-shm']) expect(statSync(join(dir, DATABASE_FILE + suffix)).mode & 0o777, suffix).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('is for admins only', async () => {
    const desk = await signIn(core, { username: 'desk', displayName: 'Front Desk', roles: ['receptionist'] });
    expect(await desk.dispatch('diagnostics.export', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
