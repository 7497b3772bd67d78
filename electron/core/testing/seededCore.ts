import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import type { HashCost } from '../accounts/passwords';
import { createCore, type CoreHandle, type CreateCoreOptions } from '../createCore';
import { DATABASE_FILE } from '../db/coreStore';
import { openDatabase } from '../db/open';
import type { Database } from '../db/types';
import { insertOutboundMedia } from '../db/repo/media';
import { insertOutboundMessage } from '../db/repo/messages';
import { applyWebhook } from '../ingest/apply';
import { keychainAccounts } from '../keys/accounts';
import { loadOrCreateCoreKeys } from '../keys/coreKeys';
import { loadOrCreateInstallationId } from '../keys/installation';
import { createKeytarSecretStore } from '../keys/secretStore';
import { TEST_HASH_COST } from './users';
import { contact, webhookBody, wamid } from './whatsappPayloads';

export interface SeededPatient {
  conversationId: number;
  contactId: number;
}

/** A clock a test moves by hand (sign-in delays, lockouts, idle expiry, break-the-glass expiry). */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export interface SeededCore {
  core: CoreHandle;
  dataDir: string;
  /** Two patients who wrote to the clinic before anyone signed in. */
  patients: [SeededPatient, SeededPatient];
  /** A stored file in the first patient's conversation (`media.get`). */
  mediaId: number;
  clock: TestClock;
  /** Everything the core logged (at debug level), to prove what never reaches a log. */
  logLines: string[];
  /** Reads the live database through a second, read-only connection (the audit log, users rows). */
  read<T>(fn: (db: Database) => T): T;
  /** Writes through a second connection (what a test needs in place that no RPC makes: a synced template). */
  write<T>(fn: (db: Database) => T): T;
  /** Closes the core (the data folder stays) and opens it again on the same folder and clock. */
  reopen(): Promise<CoreHandle>;
  /** Closes the core without opening it again (a CLI child may then open the folder). */
  closeCore(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A data folder made the way the core makes one (installation id, keys in the real keychain, the
 * encrypted database), holding two patients' conversations that arrived through ingest, and no
 * user yet — which is also what an installation from before accounts looks like. `schemaVersion`
 * leaves the database at an older version, so the core migrates it when it starts.
 */
export async function startSeededCore(
  options: { schemaVersion?: number; hashCost?: HashCost; start?: number; core?: Partial<CreateCoreOptions> } = {},
): Promise<SeededCore> {
  const dataDir = mkdtempSync(join(tmpdir(), 'clinic-accounts-'));
  const secrets = await createKeytarSecretStore();
  const installationId = loadOrCreateInstallationId(dataDir);
  const keys = await loadOrCreateCoreKeys(secrets, installationId, { databaseExists: false, dataDir });
  const { db } = openDatabase({
    path: join(dataDir, DATABASE_FILE),
    key: keys.databaseKey,
    ...(options.schemaVersion === undefined ? {} : { targetVersion: options.schemaVersion }),
  });
  const patientsWaIds = ['15555550101', '15555550102'];
  const ts = 1_760_000_000;
  const content = Buffer.from('%PDF-1.4 seeded');
  let mediaId: number;
  if (options.schemaVersion === undefined) {
    for (const [i, waId] of patientsWaIds.entries()) {
      const message = { from: waId, id: wamid('acc'), timestamp: String(ts + i), type: 'text', text: { body: `Termin bitte ${i}` } };
      applyWebhook(db, WebhookSchema.parse(webhookBody({ contacts: [contact(`Patient ${i}`, waId)], messages: [message] })), { receivedAt: (ts + i) * 1000 });
    }
  } else {
    // Today's ingest writes today's columns; an older schema gets the rows an older version wrote.
    for (const [i, waId] of patientsWaIds.entries()) {
      const at = (ts + i) * 1000;
      const contactId = Number(db.prepare('INSERT INTO contacts (wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?)').run(waId, `Patient ${i}`, at, at).lastInsertRowid);
      const conversationId = Number(
        db
          .prepare('INSERT INTO conversations (contact_id, phone_number_id, unread_count, last_activity_at, last_inbound_at, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?)')
          .run(contactId, '110000000000001', at, at, at, at).lastInsertRowid,
      );
      db.prepare(
        `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, 'inbound', 'text', ?, '{}', ?, ?, 'received')`,
      ).run(conversationId, wamid('acc'), `Termin bitte ${i}`, at, at);
    }
  }
  const rows = db.prepare('SELECT c.id AS conversationId, c.contact_id AS contactId FROM conversations c JOIN contacts k ON k.id = c.contact_id ORDER BY k.wa_id').all() as SeededPatient[];
  if (rows.length !== 2) throw new Error(`expected two seeded conversations, found ${rows.length}`);
  const first = rows[0]!;
  if (options.schemaVersion === undefined) {
    const messageId = insertOutboundMessage(db, { conversationId: first.conversationId, type: 'document', text: null, content: {}, authorUserId: 'seed' }, ts * 1000);
    mediaId = insertOutboundMedia(db, { messageId, size: content.length, content: { bytes: content, sha256Hex: '00'.repeat(32) }, mimeType: 'application/pdf', filename: 'seed.pdf', now: ts * 1000 });
  } else {
    const messageId = Number(
      db
        .prepare(`INSERT INTO messages (conversation_id, direction, type, content_json, sent_at, received_at, status) VALUES (?, 'outbound', 'document', '{}', ?, ?, 'sent')`)
        .run(first.conversationId, ts * 1000, ts * 1000).lastInsertRowid,
    );
    mediaId = Number(
      db
        .prepare(`INSERT INTO media (message_id, mime_type, sha256, size, filename, state, content, created_at, updated_at) VALUES (?, 'application/pdf', ?, ?, 'seed.pdf', 'stored', ?, ?, ?)`)
        .run(messageId, '00'.repeat(32), content.length, content, ts * 1000, ts * 1000).lastInsertRowid,
    );
  }
  db.close();

  let at = options.start ?? Date.now();
  const clock: TestClock = { now: () => at, advance: (ms) => void (at += ms) };
  const logLines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  const open = () =>
    createCore({ dataDir, secrets, logger, now: clock.now, passwordHashCost: options.hashCost ?? TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' }, ...options.core });
  let core: CoreHandle | null = await open();
  const seeded: SeededCore = {
    core,
    dataDir,
    patients: [rows[0]!, rows[1]!],
    mediaId,
    clock,
    logLines,
    read(fn) {
      const { db: reader } = openDatabase({ path: join(dataDir, DATABASE_FILE), key: keys.databaseKey, migrate: false, readonly: true });
      try {
        return fn(reader);
      } finally {
        reader.close();
      }
    },
    write(fn) {
      const { db: writer } = openDatabase({ path: join(dataDir, DATABASE_FILE), key: keys.databaseKey, migrate: false });
      try {
        return fn(writer);
      } finally {
        writer.close();
      }
    },
    async reopen() {
      await core?.close();
      core = await open();
      seeded.core = core;
      return core;
    },
    async closeCore() {
      await core?.close();
      core = null;
    },
    async stop() {
      await core?.close();
      core = null;
      for (const account of Object.values(keychainAccounts(installationId))) await secrets.delete(account).catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return seeded;
}
