// Proof the clinic owns its data: what our code writes opens in stock SQLCipher with the raw key
// from the OS keychain, plain SQLite cannot read it, and no patient text lies in the clear in any
// file of the data folder. Needs the real keychain: `node scripts/test.mjs --vitest-only electron/core`.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import PlainSqlite from 'better-sqlite3';
import sqlcipher from '@journeyapps/sqlcipher';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { applyWebhook } from '../ingest/apply';
import { keychainAccounts } from '../keys/accounts';
import { readDatabaseKey } from '../keys/coreKeys';
import { createKeytarSecretStore, type SecretStore } from '../keys/secretStore';
import { contact, sampleMessages, webhookBody } from '../testing/whatsappPayloads';
import { openCoreStore, type CoreStore } from './coreStore';
import { ALL_SHARDS, shardTable } from './searchShards';

const CANARY = `CANARY${randomBytes(8).toString('hex')}`;
let dataDir: string;
let secrets: SecretStore;
let store: CoreStore;
const logLines: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'clinic-inbox-owner-'));
  secrets = await createKeytarSecretStore();
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  store = await openCoreStore({ dataDir, secrets, logger });
  const text = { ...sampleMessages().text!, text: { body: `Bitte Rückruf ${CANARY} wegen Befund` } };
  const doc = sampleMessages().document!;
  applyWebhook(store.db, WebhookSchema.parse(webhookBody({ contacts: [contact(`Patient ${CANARY}`)], messages: [text, doc] })), { receivedAt: Date.now() });
});

afterAll(async () => {
  if (store?.db.open) store.close();
  if (store) for (const account of Object.values(keychainAccounts(store.keys.installationId))) await secrets.delete(account);
  rmSync(dataDir, { recursive: true, force: true });
});

function filesContaining(needle: string): string[] {
  return readdirSync(dataDir).filter((f) => readFileSync(join(dataDir, f)).includes(Buffer.from(needle)));
}

describe('the clinic owns its data', () => {
  it('keeps the keys in the OS keychain and records which backend', async () => {
    const { installationId } = store.keys;
    expect(store.keys.backend).toMatch(/Secret Service|Keychain|Credential Manager/);
    expect(store.db.prepare(`SELECT value FROM settings WHERE key = 'keychain_backend'`).pluck().get()).toBe(store.keys.backend);
    const hex = await secrets.get(keychainAccounts(installationId).databaseKey);
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(await secrets.get(keychainAccounts(installationId).deviceSigningKey)).toBeTruthy();
    expect(store.keys.signing.publicKeyRaw).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(store.keys.encryption.publicKeyRaw).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // No key in any file of the data folder, nor in the log.
    expect(filesContaining(hex!)).toEqual([]);
    expect(filesContaining(Buffer.from(hex!, 'hex').toString('latin1'))).toEqual([]);
    expect(logLines.join('')).not.toContain(hex!);
    expect(logLines.join('')).not.toContain(CANARY);
  });

  it('leaves no patient text in the clear in the database, its WAL or its SHM', () => {
    const files = readdirSync(dataDir);
    expect(files).toEqual(expect.arrayContaining(['clinic-inbox.db', 'clinic-inbox.db-wal']));
    expect(filesContaining(CANARY)).toEqual([]);
    expect(filesContaining('Befund')).toEqual([]);
  });

  it('opens in stock SQLCipher with the raw key read back from the keychain, and plain SQLite refuses it', async () => {
    store.close();
    expect(filesContaining(CANARY)).toEqual([]);
    const key = await readDatabaseKey(secrets, store.keys.installationId);
    expect(key).toHaveLength(32);

    const stock = new sqlcipher.Database(store.databasePath);
    const all = (sql: string) =>
      new Promise<Record<string, unknown>[]>((resolve, reject) => stock.all(sql, (err: Error | null, rows: Record<string, unknown>[]) => (err ? reject(err) : resolve(rows))));
    await all('PRAGMA cipher_compatibility = 4');
    await all(`PRAGMA key = "x'${key!.toString('hex')}'"`);
    const rows = await all(`SELECT m.text, c.profile_name FROM messages m JOIN conversations v ON v.id = m.conversation_id JOIN contacts c ON c.id = v.contact_id ORDER BY m.id`);
    expect(rows[0]).toEqual({ text: `Bitte Rückruf ${CANARY} wegen Befund`, profile_name: `Patient ${CANARY}` });
    // The search index too, every shard of it (schema 120), with stock FTS5.
    expect(await all(ALL_SHARDS.map(shardTable).map((f) => `SELECT rowid FROM ${f} WHERE ${f} MATCH 'ruckruf'`).join(' UNION ALL '))).toHaveLength(1);
    await new Promise<void>((resolve) => stock.close(() => resolve()));

    const plain = new PlainSqlite(store.databasePath, { fileMustExist: true });
    expect(() => plain.prepare('SELECT count(*) FROM sqlite_master').get()).toThrow(/not a database/);
    plain.close();
  });

  it('refuses to start without a keychain, with a message for IT, writing no database and no key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-inbox-nokeychain-'));
    try {
      const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../testing/openStoreChild.ts'), dir], {
        env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', DISPLAY: '' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      const result = JSON.parse(out.trim().split('\n').pop()!);
      expect(result).toMatchObject({ ok: false, code: 'KEYCHAIN_UNAVAILABLE' });
      expect(result.message).toMatch(/keychain/i);
      expect(result.message).toMatch(/Secret Service|GNOME Keyring/);
      expect(existsSync(join(dir, 'clinic-inbox.db'))).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens again with the same keys on the next start', async () => {
    const again = await openCoreStore({ dataDir, secrets, logger: pino({ level: 'silent' }) });
    try {
      expect(again.keys.created).toBe(false);
      expect(again.keys.signing.publicKeyRaw).toBe(store.keys.signing.publicKeyRaw);
      expect(again.db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(2);
    } finally {
      again.close();
    }
  });
});
