import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3-multiple-ciphers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import type { RelayProcess } from '../relay/testing/relayProcess';
import { createCore, type CoreHandle, type CreateCoreOptions } from '../electron/core/createCore';
import { restartable, RESTORE_ROLLED_BACK } from '../electron/core/backup/restartable';
import { contentHash } from '../electron/core/backup/format';
import { failedRestorePath, restoreFromFile, stagedRestorePath } from '../electron/core/backup/restore';
import { selectKept } from '../electron/core/backup/service';
import { DATABASE_FILE } from '../electron/core/db/coreStore';
import { applyCipherKey } from '../electron/core/db/open';
import type { Database } from '../electron/core/db/types';
import { keychainAccounts } from '../electron/core/keys/accounts';
import { createRecoveryKey } from '../electron/core/keys/recovery';
import { createKeytarSecretStore, type SecretStore } from '../electron/core/keys/secretStore';
import { adminConnection, IT_ADMIN, rpc, signIn, TEST_HASH_COST, TEST_PASSWORD, type Person } from '../electron/core/testing/users';
import { startCore } from '../electron/core/startCore';
import type { Connection, Core } from '../electron/core/types';
import { ADMIN, call, dispatchAs, quietLogger, RECEPTION, startPairedCore, tempDataDir, waitFor } from './helpers';

const PHONE = '110000000000001';
const CANARY = `canary-${Date.now()}-zebra-quartz`;

async function emptyKeychain(): Promise<SecretStore> {
  // A keychain service of its own: a new computer's keychain, with nothing of this installation.
  return createKeytarSecretStore({ service: `clinic-inbox-restore-${process.pid}-${Math.random().toString(36).slice(2)}` });
}

function hashOf(path: string, keyHex: string): string {
  const db = new Sqlite(path, { readonly: true }) as unknown as Database;
  try {
    applyCipherKey(db, Buffer.from(keyHex, 'hex'));
    return contentHash(db).hash;
  } finally {
    db.close();
  }
}

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

/** Makes a database unopenable by overwriting its first page; returns the page, to mend it later. */
function overwritePage1(path: string): Buffer {
  const fd = openSync(path, 'r+');
  try {
    const page = Buffer.alloc(4096);
    readSync(fd, page, 0, 4096, 0);
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 0);
    return page;
  } finally {
    closeSync(fd);
  }
}


describe('backups: encrypted, verified, restorable on new hardware, erasures stay erased', () => {
  let relay: RelayProcess;
  let core: CoreHandle;
  const source = tempDataDir();
  const folder = tempDataDir();
  let recoveryKey = '';
  let firstBackup = '';
  let secrets: SecretStore;

  const post = (wamid: string, text: string, from: string) => relay.postWebhook(JSON.stringify(batchWebhook([textMessageChange({ phoneNumberId: PHONE, wamid, text, from, name: 'Pat' })])));

  beforeAll(async () => {
    const { RelayProcess: Relay } = await import('../relay/testing/relayProcess');
    relay = await Relay.start();
    await relay.createTenant({ tenantId: 'clinic-bk', phoneNumberIds: [PHONE] });
    secrets = await createKeytarSecretStore();
    core = await startPairedCore(relay, 'clinic-bk', { dataDir: source.dir, checkpointIntervalMs: 3_600_000 });
    ({ recoveryKey } = await call(core, ADMIN, 'recovery.create', { replace: false }));
    await post('wamid.BK1', `Termin bitte ${CANARY}`, '15555550101');
    await post('wamid.BK2', 'Bitte alles löschen', '15555550202');
    await waitFor('two conversations', async () => (await call(core, RECEPTION, 'inbox.listConversations', {})).items.length === 2);
  }, 60_000);
  afterAll(async () => {
    await core?.close().catch(() => undefined);
    await relay?.stop();
    source.remove();
    folder.remove();
  });

  it('restores into an empty folder with an empty keychain with the same content (every table), and no backup holds plaintext', async () => {
    const keyHex = (await secrets.get(keychainAccounts(core.installationId).databaseKey))!;
    // The read entries of the calls above are made durable by a flush within a second (it writes
    // the audit log's durable-through marker); let it land so the database is at rest.
    await new Promise((r) => setTimeout(r, 1_500));
    const before = hashOf(core.databasePath, keyHex);
    const entry = await core.backups.runNow('manual', folder.dir);
    firstBackup = entry.file;
    expect(entry).toMatchObject({ verified: true, counts: { messages: 2, contacts: 2 } });
    expect(await core.backups.verify(entry.file)).toEqual({ ok: true, problem: null });

    const target = tempDataDir();
    const fresh = await emptyKeychain();
    try {
      const result = await restoreFromFile({ dataDir: target.dir, path: entry.file, recoveryKey, secrets: fresh });
      expect(result).toMatchObject({ installationId: core.installationId, erasuresReapplied: 0 });
      const restoredKey = (await fresh.get(keychainAccounts(core.installationId).databaseKey))!;
      expect(restoredKey).toBe(keyHex);
      expect(hashOf(join(target.dir, DATABASE_FILE), restoredKey)).toBe(before);
    } finally {
      for (const account of Object.values(keychainAccounts(core.installationId))) await fresh.delete(account);
      target.remove();
    }
    for (const name of files(folder.dir)) expect(readFileSync(join(folder.dir, name)).includes(Buffer.from(CANARY))).toBe(false);
  }, 60_000);

  it('refuses a wrong recovery key, a truncated, corrupted or tampered file, a newer schema — and changes nothing', async () => {
    const other = tempDataDir();
    const wrongKey = createRecoveryKey({ dataDir: other.dir, installationId: 'a'.repeat(26), keys: { databaseKey: '0'.repeat(64), deviceSigningKey: 'AA', deviceEncryptionKey: 'AA' }, now: 1 }).recoveryKey;
    const bytes = readFileSync(firstBackup);
    const variant = (name: string, data: Buffer) => {
      const p = join(other.dir, name);
      writeFileSync(p, data);
      return p;
    };
    const corrupted = Buffer.from(bytes);
    corrupted[8192 + 100] = corrupted[8192 + 100]! ^ 0xff;
    const text = bytes.toString('latin1');
    const at = text.indexOf('"createdAt":', text.lastIndexOf('"outer":')) + '"createdAt":'.length;
    const tampered = Buffer.from(bytes);
    tampered[at] = tampered[at] === 0x31 ? 0x32 : 0x31;
    const sv = text.lastIndexOf('"schemaVersion":') + '"schemaVersion":'.length;
    const newer = Buffer.from(bytes);
    // Every digit of the schema version a 9 (80 → 99): newer than this build, same length.
    for (let i = sv; newer[i]! >= 0x30 && newer[i]! <= 0x39; i += 1) newer[i] = 0x39;
    const cases: [string, string, string][] = [
      ['wrong recovery key', firstBackup, wrongKey],
      ['truncated', variant('t.cibackup', bytes.subarray(0, Math.floor(bytes.length / 2))), recoveryKey],
      ['corrupted', variant('c.cibackup', corrupted), recoveryKey],
      ['tampered header', variant('h.cibackup', tampered), recoveryKey],
      ['newer schema', variant('n.cibackup', newer), recoveryKey],
    ];
    const codes: string[] = [];
    for (const [, path, key] of cases) {
      const target = tempDataDir();
      const fresh = await emptyKeychain();
      const err = await restoreFromFile({ dataDir: target.dir, path, recoveryKey: key, secrets: fresh }).then(() => null, (e: { code?: string }) => e);
      codes.push(err?.code ?? 'accepted');
      expect(files(target.dir)).toEqual([]);
      expect(await fresh.get(keychainAccounts(core.installationId).databaseKey)).toBeNull();
      target.remove();
    }
    expect(codes).toEqual(['RECOVERY_KEY_WRONG', 'VALIDATION_FAILED', 'VALIDATION_FAILED', 'VALIDATION_FAILED', 'DATABASE_TOO_NEW']);
    other.remove();
  }, 60_000);

  it('refuses another installation\u2019s backup on this computer', async () => {
    const otherDir = tempDataDir();
    const other = await createCore({ dataDir: otherDir.dir, logger: quietLogger(), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' } });
    try {
      const res = await dispatchAs(other, ADMIN, 'backup.restore', { file: firstBackup });
      expect(res).toMatchObject({ ok: false, error: { code: 'RECOVERY_KEY_WRONG' } });
      expect(files(otherDir.dir).some((f) => f.includes('.restore'))).toBe(false);
    } finally {
      await other.close();
      otherDir.remove();
    }
  });

  it('a backup killed mid-write leaves earlier backups and the database intact, and the next run succeeds', async () => {
    await core.close();
    const before = files(folder.dir);
    const child = spawn(process.execPath, ['--import', 'tsx', 'electron/core/main.ts', '--data-dir', source.dir, '--log-level', 'silent', 'backup', '--to', folder.dir], { stdio: 'ignore' });
    await waitFor('a partial backup file', () => files(folder.dir).some((f) => f.endsWith('.partial')), 30_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(files(folder.dir).filter((f) => !f.includes('.partial'))).toEqual(before);
    core = await createCore({ dataDir: source.dir, logger: quietLogger(), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' } });
    await waitFor('relay link up', () => core.relayStatus().state === 'connected');
    expect((await call(core, RECEPTION, 'inbox.listConversations', {})).items).toHaveLength(2);
    const next = await core.backups.runNow('manual', folder.dir);
    expect(next.verified).toBe(true);
    // The killed run's scratch file was never listed and is gone after the next run.
    expect(files(folder.dir).filter((f) => f.includes('.partial'))).toEqual([]);
    expect(core.backups.list(folder.dir)).toHaveLength(before.length + 1);
  }, 90_000);

  it('restoring an older backup on new hardware erases again what was erased after it, and receives what waited at the relay', async () => {
    await call(core, ADMIN, 'backup.updateSettings', { destination: folder.dir });
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    const erased = inbox.items.find((c) => c.contact.waId === '15555550202') ?? inbox.items[1]!;
    const count = files(folder.dir).length;
    await call(core, ADMIN, 'privacy.eraseContact', { contactId: erased.contact.id, reason: 'Patient asked for erasure (art. 17)' });
    // The erasure is followed by a backup that carries the ledger.
    await waitFor('backup after the erasure', () => files(folder.dir).length > count, 30_000);
    await waitFor('it finished', async () => !(await call(core, ADMIN, 'backup.status', {})).running, 30_000);
    await core.close();
    await post('wamid.BK3', 'Nachricht während der Umzug', '15555550101');
    await waitFor('queued at the relay', async () => (await relay.queued('clinic-bk')) > 0);

    const target = tempDataDir();
    const fresh = await emptyKeychain();
    let restored: CoreHandle | null = null;
    try {
      const result = await restoreFromFile({ dataDir: target.dir, path: firstBackup, recoveryKey, secrets: fresh });
      expect(result.erasuresReapplied).toBe(1);
      restored = await createCore({ dataDir: target.dir, secrets: fresh, logger: quietLogger(), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' } });
      await waitFor('relay link up', () => restored!.relayStatus().state === 'connected', 20_000);
      await waitFor('the waiting message', async () => {
        const items = (await call(restored!, RECEPTION, 'inbox.listConversations', {})).items;
        return items.length === 1 && items[0]!.lastMessagePreview?.includes('Umzug');
      }, 20_000);
    } finally {
      await restored?.close();
      for (const account of Object.values(keychainAccounts(core.installationId))) await fresh.delete(account);
      target.remove();
    }
  }, 120_000);
});

describe('pruning', () => {
  const day = 86_400_000;
  const start = Date.UTC(2025, 0, 1, 2);
  it('keeps 30 daily and 12 monthly, and never the only verified backup', () => {
    const entries = Array.from({ length: 400 }, (_, i) => ({ file: `b${i}`, createdAt: start + i * day, verified: true }));
    const kept = selectKept(entries, 30, 12);
    expect([...kept].filter((f) => Number(f.slice(1)) >= 370)).toHaveLength(30);
    expect(kept.size).toBeLessThanOrEqual(42);
    expect(kept.has('b0')).toBe(false);
    const onlyOld = [{ file: 'good', createdAt: start, verified: true }, ...Array.from({ length: 40 }, (_, i) => ({ file: `bad${i}`, createdAt: start + (i + 1) * day, verified: false }))];
    expect(selectKept(onlyOld, 30, 0).has('good')).toBe(true);
  });
});

describe('restore through the window\u2019s core (startCore): it restarts in place', () => {
  const opts = (dataDir: string, secrets?: SecretStore) => ({ dataDir, logger: quietLogger(), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' }, policyPath: null, ...(secrets ? { secrets } : {}) });
  const BEFORE: Person = { username: 'before-backup', displayName: 'Before Backup', roles: ['receptionist'] };
  const AFTER: Person = { username: 'after-backup', displayName: 'After Backup', roles: ['receptionist'] };

  /**
   * The same-computer restore with a fault: a backup is made, a user (AFTER) is added after it, and a
   * second window asks for the restore. `open` starts each core and may break files on the way.
   */
  async function restoreThrough(dir: string, folder: string, first: CoreHandle, open: (o: CreateCoreOptions) => Promise<CoreHandle>) {
    const core = restartable(opts(dir), first, open);
    try {
      const admin = await adminConnection(core);
      await rpc(admin, 'backup.updateSettings', { destination: folder });
      const entry = await rpc(admin, 'backup.runNow', {});
      await signIn(core, AFTER);
      const window = core.connect('test-window');
      await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      const result = await window.dispatch('backup.restore', { file: entry.file });
      return { core, admin, window, entry, result };
    } catch (error) {
      await core.close();
      throw error;
    }
  }
  const usernames = async (connection: Connection) => (await rpc(connection, 'users.list')).map((u) => u.username).sort();

  it('same computer: backup.restore reopens the core on the backup, the window reattaches signed out, nothing is left aside', async () => {
    const dir = tempDataDir();
    const folder = tempDataDir();
    const core = await startCore(opts(dir.dir));
    try {
      const admin = await adminConnection(core);
      await signIn(core, BEFORE);
      await rpc(admin, 'backup.updateSettings', { destination: folder.dir });
      const entry = await rpc(admin, 'backup.runNow', {});
      await signIn(core, AFTER);
      expect(await usernames(admin)).toContain(AFTER.username);
      const window = core.connect('test-window');
      const events: string[] = [];
      window.on((event) => events.push(event));
      await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      const result = await rpc(window, 'backup.restore', { file: entry.file });
      expect(result).toMatchObject({ createdAt: entry.createdAt, erasuresReapplied: 0, restartRequired: true });
      // The same connection now speaks to the restored core, signed out (its sessions are the backup's).
      expect(await rpc(window, 'session.whoami')).toMatchObject({ signedIn: false });
      await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      expect(await usernames(window)).toEqual([BEFORE.username, IT_ADMIN.username].sort());
      // The other window was told to show sign-in.
      expect(await admin.dispatch('users.list', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
      expect(files(dir.dir).filter((f) => f.includes('before-restore') || f.endsWith('.restore'))).toEqual([]);
    } finally {
      await core.close();
      dir.remove();
      folder.remove();
    }
  }, 90_000);

  it('same computer: a restored database that does not open after the swap is rolled back; the core runs on the previous one unchanged', async () => {
    const dir = tempDataDir();
    const folder = tempDataDir();
    const first = await createCore(opts(dir.dir));
    const live = join(dir.dir, DATABASE_FILE);
    const keyHex = (await secretsOf(first.installationId, 'databaseKey'))!;
    const seen: { before?: string; putBack?: string } = {};
    // The fault: the staged database is made unopenable between its checks and the core's start
    // (its first page overwritten), so the swap happens and the open fails.
    const open = async (o: CreateCoreOptions): Promise<CoreHandle> => {
      const staged = stagedRestorePath(dir.dir);
      if (existsSync(staged)) {
        seen.before = hashOf(live, keyHex);
        overwritePage1(staged);
      } else {
        seen.putBack = hashOf(live, keyHex);
      }
      return createCore(o);
    };
    const { core, window, entry, result } = await restoreThrough(dir.dir, folder.dir, first, open);
    try {
      expect(result).toEqual({ ok: false, error: { code: 'VALIDATION_FAILED', message: RESTORE_ROLLED_BACK } });
      // The previous database went back exactly (every table), and the core runs on it.
      expect(seen.before).toMatch(/^[0-9a-f]{64}$/);
      expect(seen.putBack).toBe(seen.before);
      await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      expect(await usernames(window)).toContain(AFTER.username);
      expect(files(dir.dir).filter((f) => f.includes('before-restore') || f.endsWith('.restore'))).toEqual([]);
      // The backup itself was not the problem: it still verifies, and a later restore works.
      expect(await rpc(window, 'backup.verify', { file: entry.file })).toEqual({ ok: true, problem: null });
    } finally {
      await core.close();
      dir.remove();
      folder.remove();
    }
  }, 90_000);

  it('same computer: when the database put back does not open either, the core says so and stops, keeps both files, and the next start opens the put-back one once it opens', async () => {
    const dir = tempDataDir();
    const folder = tempDataDir();
    const first = await createCore(opts(dir.dir));
    const live = join(dir.dir, DATABASE_FILE);
    const keyHex = (await secretsOf(first.installationId, 'databaseKey'))!;
    const fileHash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
    const seen: { before?: string; restored?: string; putBack?: string; page1?: Buffer } = {};
    // Both faults as in the test above: the staged database is made unopenable before the swap, and
    // the previous one once it is back (its first page saved, to mend it for the next start).
    const open = async (o: CreateCoreOptions): Promise<CoreHandle> => {
      const staged = stagedRestorePath(dir.dir);
      if (existsSync(staged)) {
        seen.before = hashOf(live, keyHex);
        overwritePage1(staged);
        seen.restored = fileHash(staged);
      } else {
        seen.page1 = overwritePage1(live);
        seen.putBack = fileHash(live);
      }
      return createCore(o);
    };
    const { core, admin, window, result } = await restoreThrough(dir.dir, folder.dir, first, open);
    try {
      // Not "rolled back": the window is told both failed, and where the two files are.
      expect(result).toMatchObject({ ok: false, error: { code: 'RESTORE_ROLLBACK_FAILED' } });
      const message = (result as { error: { message: string } }).error.message;
      expect(message).not.toBe(RESTORE_ROLLED_BACK);
      expect(message).toContain(`${DATABASE_FILE}.restore-failed`);
      // Every window, this one and the other, now answers the same instead of a closed core's error.
      expect(await window.dispatch('session.whoami', {})).toMatchObject({ ok: false, error: { code: 'RESTORE_ROLLBACK_FAILED' } });
      expect(await admin.dispatch('users.list', {})).toMatchObject({ ok: false, error: { code: 'RESTORE_ROLLBACK_FAILED' } });
      // Nothing deleted or moved further: the put-back database in place, the restored one beside it, byte for byte.
      expect(fileHash(live)).toBe(seen.putBack);
      expect(fileHash(failedRestorePath(dir.dir))).toBe(seen.restored);
      expect(files(dir.dir).filter((f) => f.includes('before-restore') || f.endsWith('.restore'))).toEqual([]);
    } finally {
      await core.close();
    }
    try {
      // The next start while the put-back database still does not open: refused with the same code, files untouched.
      await expect(startCore(opts(dir.dir))).rejects.toMatchObject({ code: 'RESTORE_ROLLBACK_FAILED' });
      expect(fileHash(live)).toBe(seen.putBack);
      expect(fileHash(failedRestorePath(dir.dir))).toBe(seen.restored);
      // Once it opens (here: its first page mended), the next start runs on it, unchanged in every
      // table, and the restored copy that never opened goes (its backup file is still in the folder).
      const fd = openSync(live, 'r+');
      writeSync(fd, seen.page1!, 0, 4096, 0);
      closeSync(fd);
      expect(hashOf(live, keyHex)).toBe(seen.before);
      const again = await startCore(opts(dir.dir));
      try {
        const window = again.connect('test-window');
        await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
        expect(await usernames(window)).toContain(AFTER.username);
      } finally {
        await again.close();
      }
      expect(existsSync(failedRestorePath(dir.dir))).toBe(false);
    } finally {
      dir.remove();
      folder.remove();
    }
  }, 120_000);

  it('new hardware: a never-used installation is replaced by the backup (keys, users, settings); a used one is refused and unchanged', async () => {
    const source = tempDataDir();
    const folder = tempDataDir();
    const target = tempDataDir();
    const fresh = await emptyKeychain();
    const core = await startCore(opts(source.dir));
    let restored: Core | null = null;
    try {
      const admin = await adminConnection(core);
      await signIn(core, BEFORE);
      const { recoveryKey } = await rpc(admin, 'recovery.create', { replace: false });
      await rpc(admin, 'backup.updateSettings', { destination: folder.dir, dailyAt: '03:30' });
      const entry = await rpc(admin, 'backup.runNow', {});
      const sourceId = readFileSync(join(source.dir, 'installation-id'), 'utf8').trim();

      // The source is in use: refused with CONFLICT, and it keeps everything.
      const used = await core.connect('test').dispatch('backup.restoreFromFile', { path: entry.file, recoveryKey });
      expect(used).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });

      // A new computer: the window's core made a fresh installation before anyone could ask.
      restored = await startCore(opts(target.dir, fresh));
      const freshId = readFileSync(join(target.dir, 'installation-id'), 'utf8').trim();
      expect(freshId).not.toBe(sourceId);
      const window = restored.connect('test-window');
      expect(await window.dispatch('backup.restoreFromFile', { path: entry.file, recoveryKey: 'WRONG-KEY0-AAAA-AAAA' })).toMatchObject({ ok: false });
      expect(readFileSync(join(target.dir, 'installation-id'), 'utf8').trim()).toBe(freshId);
      const result = await rpc(window, 'backup.restoreFromFile', { path: entry.file, recoveryKey });
      expect(result).toMatchObject({ installationId: sourceId, createdAt: entry.createdAt });
      expect(readFileSync(join(target.dir, 'installation-id'), 'utf8').trim()).toBe(sourceId);
      // The fresh installation's keys are gone; the restored ones are there (device keys too: no re-pairing).
      expect(await fresh.get(keychainAccounts(freshId).databaseKey)).toBeNull();
      for (const account of ['databaseKey', 'deviceSigningKey', 'deviceEncryptionKey'] as const) {
        expect(await fresh.get(keychainAccounts(sourceId)[account])).toBe(await secretsOf(sourceId, account));
      }
      await rpc(window, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      expect(await usernames(window)).toEqual([BEFORE.username, IT_ADMIN.username].sort());
      expect(await rpc(window, 'backup.getSettings', {})).toMatchObject({ dailyAt: '03:30' });
      expect(files(target.dir).filter((f) => f.includes('before-restore') || f.endsWith('.restore'))).toEqual([]);
    } finally {
      await restored?.close();
      await core.close();
      for (const id of [readFileSync(join(target.dir, 'installation-id'), 'utf8').trim()]) for (const account of Object.values(keychainAccounts(id))) await fresh.delete(account);
      source.remove();
      folder.remove();
      target.remove();
    }
  }, 120_000);
});

describe('the recovery key was replaced after a backup', () => {
  it('an older backup opens with the new key through the recovery file a newer backup in the folder carries', async () => {
    const source = tempDataDir();
    const folder = tempDataDir();
    const core = await startCore({ dataDir: source.dir, logger: quietLogger(), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' }, policyPath: null });
    try {
      const admin = await adminConnection(core);
      const first = await rpc(admin, 'recovery.create', { replace: false });
      await rpc(admin, 'backup.updateSettings', { destination: folder.dir });
      const older = await rpc(admin, 'backup.runNow', {});
      const second = await rpc(admin, 'recovery.create', { replace: true });
      expect(second.recoveryKey).not.toBe(first.recoveryKey);
      await rpc(admin, 'backup.runNow', {});
      const installationId = readFileSync(join(source.dir, 'installation-id'), 'utf8').trim();
      for (const key of [second.recoveryKey, first.recoveryKey]) {
        const target = tempDataDir();
        const fresh = await emptyKeychain();
        try {
          expect(await restoreFromFile({ dataDir: target.dir, path: older.file, recoveryKey: key, secrets: fresh })).toMatchObject({ installationId, createdAt: older.createdAt });
        } finally {
          for (const account of Object.values(keychainAccounts(installationId))) await fresh.delete(account);
          target.remove();
        }
      }
    } finally {
      await core.close();
      source.remove();
      folder.remove();
    }
  }, 90_000);
});

async function secretsOf(installationId: string, account: 'databaseKey' | 'deviceSigningKey' | 'deviceEncryptionKey'): Promise<string | null> {
  return (await createKeytarSecretStore()).get(keychainAccounts(installationId)[account]);
}
