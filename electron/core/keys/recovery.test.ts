// The IT admin's recovery key, end to end with the real keychain: made once at setup, it brings the
// data back on "new hardware" (a keychain that has lost every entry of the installation), and every
// wrong input is refused without writing anything.
// Needs the keychain: `node scripts/test.mjs --vitest-only electron/core/keys`.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError } from '../../../shared/errors';
import { createCore, type CoreHandle } from '../createCore';
import { startCore } from '../startCore';
import type { Core } from '../types';
import { IT_ADMIN, signIn, type Person } from '../testing/users';
import { DATABASE_FILE, openCoreStore } from '../db/coreStore';
import pino from 'pino';
import { contact, sampleMessages, webhookBody } from '../testing/whatsappPayloads';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { applyWebhook } from '../ingest/apply';
import { keychainAccounts } from './accounts';
import { parseRecoveryKey, RECOVERY_FILE, restoreFromRecoveryKey } from './recovery';
import { createKeytarSecretStore, type SecretStore } from './secretStore';

const quietLogger = () => pino({ level: 'silent' });
const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const ADMIN: Person = IT_ADMIN;
const RECEPTIONIST: Person = { username: 'desk', displayName: 'Desk', roles: ['receptionist'] };

let secrets: SecretStore;
const dirs: string[] = [];
const installations = new Set<string>();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-recovery-'));
  dirs.push(dir);
  return dir;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof CodedError ? err.code : String(err);
  }
}

/** "New hardware": this computer's keychain holds nothing of the installation. */
async function wipeKeychain(installationId: string): Promise<void> {
  for (const account of Object.values(keychainAccounts(installationId))) await secrets.delete(account);
}

async function openCore(dataDir: string): Promise<CoreHandle> {
  const core = await createCore({ dataDir, secrets, logger: quietLogger() });
  installations.add(core.installationId);
  return core;
}

async function call<T>(core: Core, method: string, params: unknown, person: Person = ADMIN): Promise<T> {
  const result = await (await signIn(core, person)).dispatch(method, params);
  if (!result.ok) throw new CodedError(result.error.code, result.error.message);
  return result.value as T;
}

beforeAll(async () => {
  secrets = await createKeytarSecretStore();
});

afterAll(async () => {
  for (const id of installations) await wipeKeychain(id);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('recovery key format', () => {
  it('reads a key however it was typed, and tells a typo from a wrong key', async () => {
    const dataDir = tempDir();
    const core = await openCore(dataDir);
    const { recoveryKey } = await call<{ recoveryKey: string }>(core, 'recovery.create', {});
    await core.close();
    expect(recoveryKey).toMatch(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);
    const secret = parseRecoveryKey(recoveryKey);
    expect(parseRecoveryKey(recoveryKey.toLowerCase().replace(/-/g, ' '))).toEqual(secret);
    // People read 0 as O and 1 as I or l: Crockford's alphabet has neither letter, so both mean the digit.
    expect(parseRecoveryKey(recoveryKey.replace(/0/g, 'O').replace(/1/g, 'l'))).toEqual(secret);

    const typo = recoveryKey.slice(0, 5) + (recoveryKey[5] === 'A' ? 'B' : 'A') + recoveryKey.slice(6);
    expect(() => parseRecoveryKey(typo)).toThrow(expect.objectContaining({ code: 'RECOVERY_KEY_INVALID' }));
    expect(() => parseRecoveryKey(recoveryKey.slice(0, -1))).toThrow(expect.objectContaining({ code: 'RECOVERY_KEY_INVALID' }));
    expect(() => parseRecoveryKey('')).toThrow(expect.objectContaining({ code: 'RECOVERY_KEY_INVALID' }));
  });
});

describe('moving the data to new hardware', () => {
  let dataDir: string;
  let installationId: string;
  let recoveryKey: string;
  /** The keychain entries of the "old computer", to compare with what the recovery brings back. */
  const original: Record<string, string | null> = {};

  beforeAll(async () => {
    dataDir = tempDir();
    const core = await openCore(dataDir);
    installationId = core.installationId;
    expect(await call(core, 'recovery.status', {})).toEqual({ configured: false, createdAt: null, confirmed: false });
    // Only an admin may make one, and a receptionist cannot even see whether one exists.
    expect(await codeOf(call(core, 'recovery.create', {}, RECEPTIONIST))).toBe('FORBIDDEN');
    expect(await codeOf(call(core, 'recovery.status', {}, RECEPTIONIST))).toBe('FORBIDDEN');
    // Shown but not confirmed (the page was reloaded): a new key replaces it without asking.
    const unconfirmed = await call<{ recoveryKey: string; createdAt: number }>(core, 'recovery.create', {});
    expect(await call(core, 'recovery.status', {})).toMatchObject({ configured: true, confirmed: false });
    await new Promise((r) => setTimeout(r, 2));
    const shown = await call<{ recoveryKey: string; createdAt: number }>(core, 'recovery.create', {});
    expect(shown.recoveryKey).not.toBe(unconfirmed.recoveryKey);
    // Confirming the replaced key confirms nothing; the shown one is confirmed.
    expect(await call(core, 'recovery.confirm', { createdAt: unconfirmed.createdAt })).toEqual({ confirmed: false });
    expect(await call(core, 'recovery.confirm', { createdAt: shown.createdAt })).toEqual({ confirmed: true });
    expect(await call(core, 'recovery.status', {})).toMatchObject({ configured: true, confirmed: true });
    recoveryKey = shown.recoveryKey;
    // A second click must not silently invalidate the key the admin just printed.
    expect(await codeOf(call(core, 'recovery.create', {}))).toBe('CONFLICT');
    await core.close();
    const accounts = keychainAccounts(installationId);
    for (const account of [accounts.databaseKey, accounts.deviceSigningKey, accounts.deviceEncryptionKey]) original[account] = await secrets.get(account);

    const store = await openCoreStore({ dataDir, secrets, logger: quietLogger() });
    const text = { ...sampleMessages().text!, text: { body: 'Mijn uitslag graag per post' } };
    applyWebhook(store.db, WebhookSchema.parse(webhookBody({ contacts: [contact('Anna de Vries')], messages: [text] })), { receivedAt: Date.now() });
    store.close();
  });

  it('keeps no secret in the recovery file: it holds the keys only wrapped', async () => {
    const file = readFileSync(join(dataDir, RECOVERY_FILE), 'utf8');
    for (const value of Object.values(original)) {
      expect(value).toBeTruthy();
      expect(file).not.toContain(value!);
      expect(file).not.toContain(value!.slice(-40)); // the raw key bytes at the end of the PKCS#8 DER
    }
    const dbKey = original[keychainAccounts(installationId).databaseKey]!;
    expect(file).not.toContain(Buffer.from(dbKey, 'hex').toString('base64url'));
    expect(file).not.toContain(recoveryKey.replace(/-/g, ''));
  });

  it('refuses to start without the database key, and writes no new key over the old data', async () => {
    await wipeKeychain(installationId);
    const err = await createCore({ dataDir, secrets, logger: quietLogger() }).then(
      () => null,
      (e: unknown) => e as CodedError,
    );
    expect(err?.code).toBe('RECOVERY_REQUIRED');
    expect(err?.message).toContain('--recover');
    expect(await secrets.get(keychainAccounts(installationId).databaseKey)).toBeNull();
  });

  it('refuses a mistyped key, a key of another installation, and a damaged recovery file, changing nothing', async () => {
    const databasePath = join(dataDir, DATABASE_FILE);
    const typo = recoveryKey.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    expect(await codeOf(restoreFromRecoveryKey({ dataDir, databasePath, secrets, recoveryKey: typo }))).toBe('RECOVERY_KEY_INVALID');

    const other = tempDir();
    const otherCore = await openCore(other);
    const { recoveryKey: otherKey } = await call<{ recoveryKey: string }>(otherCore, 'recovery.create', {});
    await otherCore.close();
    expect(await codeOf(restoreFromRecoveryKey({ dataDir, databasePath, secrets, recoveryKey: otherKey }))).toBe('RECOVERY_KEY_WRONG');

    // The right key with another installation's recovery file (an admin copied the wrong folder's file).
    const mixed = tempDir();
    cpSync(dataDir, mixed, { recursive: true });
    cpSync(join(other, RECOVERY_FILE), join(mixed, RECOVERY_FILE));
    expect(await codeOf(restoreFromRecoveryKey({ dataDir: mixed, databasePath: join(mixed, DATABASE_FILE), secrets, recoveryKey: otherKey }))).toBe('RECOVERY_KEY_WRONG');

    const damaged = tempDir();
    cpSync(dataDir, damaged, { recursive: true });
    const file = JSON.parse(readFileSync(join(damaged, RECOVERY_FILE), 'utf8')) as { wrappedKeys: string };
    file.wrappedKeys = `A${file.wrappedKeys.slice(1)}` === file.wrappedKeys ? `B${file.wrappedKeys.slice(1)}` : `A${file.wrappedKeys.slice(1)}`;
    writeFileSync(join(damaged, RECOVERY_FILE), JSON.stringify(file));
    expect(await codeOf(restoreFromRecoveryKey({ dataDir: damaged, databasePath: join(damaged, DATABASE_FILE), secrets, recoveryKey }))).toBe('RECOVERY_KEY_WRONG');

    expect(await secrets.get(keychainAccounts(installationId).databaseKey)).toBeNull();
  });

  it('brings the data back with the recovery key typed through the command line', async () => {
    const run = promisify(execFile);
    const child = run(process.execPath, ['--import', 'tsx', join(ROOT, 'electron/core/main.ts'), '--data-dir', dataDir, '--recover'], { cwd: ROOT });
    child.child.stdin!.end(`  ${recoveryKey.toLowerCase()}\n`);
    const { stdout } = await child;
    expect(stdout).toContain('back in this computer');
    expect(stdout).toContain('reconnects to the relay as before');
    // The same keys as on the old computer: the database key, and the device keys the relay knows.
    for (const [account, value] of Object.entries(original)) expect(await secrets.get(account)).toBe(value);

    const core = await openCore(dataDir);
    const page = await call<{ items: { lastMessagePreview: string | null }[] }>(core, 'inbox.listConversations', {}, RECEPTIONIST);
    expect(page.items.map((c) => c.lastMessagePreview)).toEqual(['Mijn uitslag graag per post']);
    await core.close();

    // Restoring again changes nothing.
    const again = await restoreFromRecoveryKey({ dataDir, databasePath: join(dataDir, DATABASE_FILE), secrets, recoveryKey });
    expect(again.restored).toBe(false);
  });

  it('makes the old key useless once the admin replaces it', async () => {
    const core = await openCore(dataDir);
    const { recoveryKey: fresh, createdAt } = await call<{ recoveryKey: string; createdAt: number }>(core, 'recovery.create', { replace: true });
    // The admin ticks "stored safely", as the wizard asks: from then on it is not replaced by accident.
    expect(await call(core, 'recovery.confirm', { createdAt })).toEqual({ confirmed: true });
    await core.close();
    expect(fresh).not.toBe(recoveryKey);
    await wipeKeychain(installationId);
    const databasePath = join(dataDir, DATABASE_FILE);
    expect(await codeOf(restoreFromRecoveryKey({ dataDir, databasePath, secrets, recoveryKey }))).toBe('RECOVERY_KEY_WRONG');
    expect(await restoreFromRecoveryKey({ dataDir, databasePath, secrets, recoveryKey: fresh })).toEqual({ installationId, restored: true });
  });

  it('prints a recovery key once from the command line, and will not replace it by accident', async () => {
    const run = promisify(execFile);
    const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(ROOT, 'electron/core/main.ts'), '--data-dir', dataDir, ...args], { cwd: ROOT });
    const refused = await cli('--create-recovery-key').then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain('CONFLICT');
    const { stdout } = await cli('--create-recovery-key', '--replace');
    const printed = /([0-9A-Z]{4}-){7}[0-9A-Z]{4}/.exec(stdout)?.[0];
    expect(printed).toBeDefined();
    await wipeKeychain(installationId);
    expect(await restoreFromRecoveryKey({ dataDir, databasePath: join(dataDir, DATABASE_FILE), secrets, recoveryKey: printed! })).toMatchObject({ restored: true });
    recoveryKey = printed!;
  });

  it('a window on a locked core can restore access itself, and the attempts are audited', async () => {
    await wipeKeychain(installationId);
    const core = await startCore({ dataDir, secrets, logger: quietLogger() });
    // Until the key is back there are no accounts to sign in to: the recovery key is the credential.
    const window = core.connect('test');
    const locked = await window.dispatch('inbox.listConversations', {});
    expect(locked).toMatchObject({ ok: false, error: { code: 'RECOVERY_REQUIRED' } });
    expect(await window.dispatch('auth.signIn', { username: 'it-admin', password: 'lantern orchard velvet 42' })).toMatchObject({ ok: false, error: { code: 'RECOVERY_REQUIRED' } });
    const wrong = await window.dispatch('recovery.restore', { recoveryKey: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ' });
    expect(wrong).toMatchObject({ ok: false, error: { code: 'RECOVERY_KEY_INVALID' } });
    expect(await window.dispatch('recovery.restore', { recoveryKey })).toEqual({ ok: true, value: { installationId, restored: true } });
    // Restored: the same window now meets the real core, signed out, and people sign in as usual.
    expect(await window.dispatch('inbox.listConversations', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    try {
      const page = await call<{ items: unknown[] }>(core, 'inbox.listConversations', {}, RECEPTIONIST);
      expect(page.items).toHaveLength(1);
      // Once open, there is nothing left to restore.
      expect(await window.dispatch('recovery.restore', { recoveryKey })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    } finally {
      await core.close();
    }
    const store = await openCoreStore({ dataDir, secrets, logger: quietLogger() });
    try {
      const rows = store.db.prepare(`SELECT outcome, error_code FROM audit_log WHERE method = 'recovery.restore' ORDER BY seq`).all();
      expect(rows).toEqual([
        { outcome: 'error', error_code: 'RECOVERY_KEY_INVALID' },
        { outcome: 'ok', error_code: null },
        { outcome: 'error', error_code: 'CONFLICT' },
      ]);
    } finally {
      store.close();
    }
  });
});
