import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { entryHash, GENESIS_HASH } from '../audit/auditLog';
import { createCore, type CoreHandle } from '../createCore';
import { DATABASE_FILE } from '../db/coreStore';
import { openDatabase } from '../db/open';
import { applyWebhook } from '../ingest/apply';
import { keychainAccounts } from '../keys/accounts';
import { loadOrCreateCoreKeys } from '../keys/coreKeys';
import { loadOrCreateInstallationId } from '../keys/installation';
import { createKeytarSecretStore } from '../keys/secretStore';
import { TEST_HASH_COST } from './users';
import { contact, webhookBody, wamid } from './whatsappPayloads';

export interface ClinicPatient {
  conversationId: number;
  contactId: number;
  name: string;
  waId: string;
}

export interface AuditClinic {
  core: CoreHandle;
  dataDir: string;
  patients: ClinicPatient[];
  clock: { now(): number; set(ms: number): void; advance(ms: number): void };
  /** Closes the core; the folder and keys stay (a CLI child may open them). */
  closeCore(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A data folder for the auditor's tests: `patients` conversations that arrived through ingest
 * (synthetic names and numbers), and — when `legacyEntry` is set — one audit entry written the
 * way the log did before accounts (hash version 1) on a version-40 database, then migrated to this
 * build's schema (the side table back-filled) before the patients arrive.
 */
export async function startAuditClinic(options: { patients?: number; legacyEntry?: boolean; start?: number } = {}): Promise<AuditClinic> {
  const n = options.patients ?? 3;
  const dataDir = mkdtempSync(join(tmpdir(), 'clinic-audit-'));
  const secrets = await createKeytarSecretStore();
  const installationId = loadOrCreateInstallationId(dataDir);
  const keys = await loadOrCreateCoreKeys(secrets, installationId, { databaseExists: false, dataDir });
  const path = join(dataDir, DATABASE_FILE);
  const ts = 1_760_000_000;
  if (options.legacyEntry) {
    // Before accounts: a version-40 database whose first entry is hash version 1, about the first patient (contact 1).
    const { db: old } = openDatabase({ path, key: keys.databaseKey, targetVersion: 40 });
    const v1 = { seq: 1, at: ts * 1000, user_id: 'anna', role: 'receptionist', action: 'read', method: 'messages.list', contact_ids: '[1]', origin: 'electron', outcome: 'ok', error_code: null, reason: null };
    const hash = entryHash({ ...v1, display_name: null, session_id: null, hash_version: 1, prev_hash: GENESIS_HASH });
    old.prepare(
      `INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash)
       VALUES (@seq, @at, @user_id, @role, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, '${GENESIS_HASH}', '${hash}')`,
    ).run(v1);
    old.close();
  }
  const { db } = openDatabase({ path, key: keys.databaseKey });
  const patients: ClinicPatient[] = [];
  for (let i = 0; i < n; i++) {
    const waId = `1555560${String(i).padStart(4, '0')}`;
    const name = `Testpatient ${String(i).padStart(3, '0')}`;
    const message = { from: waId, id: wamid('audit'), timestamp: String(ts + i), type: 'text', text: { body: `Termin bitte ${i}` } };
    applyWebhook(db, WebhookSchema.parse(webhookBody({ contacts: [contact(name, waId)], messages: [message] })), { receivedAt: (ts + i) * 1000 });
    const row = db.prepare('SELECT c.id AS conversationId, c.contact_id AS contactId FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = ?').get(waId) as
      | { conversationId: number; contactId: number }
      | undefined;
    if (!row) throw new Error(`patient ${i} was not ingested`);
    patients.push({ ...row, name, waId });
  }
  if (options.legacyEntry && patients[0]!.contactId !== 1) throw new Error('the legacy entry names contact 1, which is not the first patient');
  db.close();

  let at = options.start ?? Date.now();
  const clock = { now: () => at, set: (ms: number) => void (at = ms), advance: (ms: number) => void (at += ms) };
  let core: CoreHandle | null = await createCore({
    dataDir,
    secrets,
    logger: pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' }),
    now: clock.now,
    passwordHashCost: TEST_HASH_COST,
    graph: { baseUrl: 'http://127.0.0.1:9' },
  });
  return {
    core,
    dataDir,
    patients,
    clock,
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
}
