// The Windows registry as Group Policy writes it, read through `reg query … /s` output recorded in
// reg.exe's own format (CRLF, a blank line before each key, four-space fields; REG_DWORD in hex,
// REG_MULTI_SZ joined by a literal \0). No Windows here: the reading path runs an injected reg.exe.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { POLICY_KEYS, policyKeys } from '../../../shared/policy';
import { createCore, type CoreHandle } from '../createCore';
import { keychainAccounts } from '../keys/accounts';
import { createKeytarSecretStore } from '../keys/secretStore';
import { TEST_HASH_COST, adminConnection, rpc } from '../testing/users';
import { readManagedPolicy } from './policyFile';
import { parseRegQuery, policyFromRegistry, readRegistryPolicy, REGISTRY_KINDS, type RegKey, type RegRunner } from './registry';

const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');
const KEY = 'HKEY_LOCAL_MACHINE\\Software\\Policies\\ClinicInbox';

/** Every key set, as an admin would with the documented types. */
const FULL_OUTPUT = crlf([
  '',
  KEY,
  '    updateUrl    REG_SZ    https://updates.hospital.example/clinic-inbox/',
  '    updateChannel    REG_SZ    early',
  '    allowedVersion    REG_SZ    0.0.9',
  '    updateDeferralDays    REG_DWORD    0x3',
  '    allowedRelayUrl    REG_SZ    https://relay.hospital.example',
  '    idleLockMinutes    REG_DWORD    0xa',
  '    twoFactorRequired    REG_DWORD    0x1',
  '    retentionMinimumDays    REG_DWORD    0xe42',
  '    backupFolder    REG_EXPAND_SZ    %ProgramData%\\Clinic Inbox\\Backups on D',
  '    sendGuardMode    REG_SZ    block',
  '    languages    REG_MULTI_SZ    nl\\0en',
  '',
]);

const runner = (reply: { code: number; stdout: string } | Error, calls: { file: string; args: readonly string[] }[] = []): RegRunner => {
  return async (file, args) => {
    calls.push({ file, args });
    if (reply instanceof Error) throw reply;
    return { code: reply.code, stdout: new TextEncoder().encode(reply.stdout) };
  };
};

describe('reg query output', () => {
  it('reads every policy key with its documented type into the schema’s values', () => {
    const key = parseRegQuery(FULL_OUTPUT)!;
    expect(key.values.get('idleLockMinutes')).toEqual({ type: 'REG_DWORD', data: '0xa' });
    const reading = policyFromRegistry(key, { PROGRAMDATA: 'C:\\ProgramData' });
    expect(reading.problems).toEqual([]);
    expect(reading.policy).toEqual({
      updateUrl: 'https://updates.hospital.example/clinic-inbox/',
      updateChannel: 'early',
      allowedVersion: '0.0.9',
      updateDeferralDays: 3,
      allowedRelayUrl: 'https://relay.hospital.example',
      idleLockMinutes: 10,
      twoFactorRequired: true,
      retentionMinimumDays: 3650,
      backupFolder: 'C:\\ProgramData\\Clinic Inbox\\Backups on D',
      sendGuardMode: 'block',
      languages: ['nl', 'en'],
    });
    // Each schema key has a registry type, so a new key cannot be left out of the registry.
    expect(Object.keys(REGISTRY_KINDS).sort()).toEqual([...POLICY_KEYS].sort());
    for (const k of POLICY_KEYS) expect(Object.keys(reading.policy)).toContain(k);
    expect(Object.keys(policyKeys)).toHaveLength(POLICY_KEYS.length);
  });

  it('reports wrong types, empty values and unknown names key by key, and keeps the good ones', () => {
    const output = crlf([
      '',
      KEY,
      '    idleLockMinutes    REG_SZ    10',
      '    twoFactorRequired    REG_DWORD    0x2',
      '    backupFolder    REG_SZ    ',
      '    updateUrl    REG_SZ',
      '    languages    REG_SZ    nl,en',
      '    sendGuardMode    REG_SZ    shout',
      '    colour    REG_SZ    blue',
      '    (Default)    REG_SZ    (value not set)',
      '    UPDATECHANNEL    REG_SZ    early',
      '    retentionMinimumDays    REG_BINARY    420e0000',
      '',
    ]);
    const reading = policyFromRegistry(parseRegQuery(output)!);
    // Value names match without regard to case, as the registry treats them.
    expect(reading.policy).toEqual({ updateChannel: 'early' });
    const byKey = new Map(reading.problems.map((p) => [p.key, p.message]));
    expect([...byKey.keys()].sort()).toEqual(['(Default)', 'backupFolder', 'colour', 'idleLockMinutes', 'languages', 'retentionMinimumDays', 'sendGuardMode', 'twoFactorRequired', 'updateUrl']);
    expect(byKey.get('idleLockMinutes')).toBe('In the registry: idleLockMinutes must be REG_DWORD (found REG_SZ); ignored.');
    expect(byKey.get('twoFactorRequired')).toMatch(/must be 1 \(on\) or 0 \(off\); ignored\.$/);
    expect(byKey.get('backupFolder')).toMatch(/is empty; ignored/);
    expect(byKey.get('updateUrl')).toMatch(/is empty; ignored/);
    expect(byKey.get('languages')).toMatch(/must be REG_MULTI_SZ \(found REG_SZ\)/);
    expect(byKey.get('sendGuardMode')).toMatch(/^In the registry: Ignored: /);
    expect(byKey.get('colour')).toMatch(/not a Clinic Inbox policy value/);
    // No value's data in any message (they go to the log and the admin's banner).
    expect(reading.problems.map((p) => p.message).join(' ')).not.toMatch(/blue|shout|nl,en|420e/);
  });

  it('reads a list written as an ADMX <list> subkey, and reports other subkeys', () => {
    const output = crlf([
      '',
      KEY,
      '    idleLockMinutes    REG_DWORD    0x2',
      '',
      `${KEY}\\languages`,
      '    2    REG_SZ    en',
      '    1    REG_SZ    de',
      '',
      `${KEY}\\Extras`,
      '    idleLockMinutes    REG_DWORD    0x3c',
      '',
    ]);
    const reading = policyFromRegistry(parseRegQuery(output)!);
    expect(reading.policy).toEqual({ idleLockMinutes: 2, languages: ['de', 'en'] });
    expect(reading.problems).toEqual([{ key: 'Extras\\', message: expect.stringMatching(/subkey Extras is not a Clinic Inbox policy list; ignored/) }]);
  });

  it('treats an empty key as no policy and a multi-string with empty items as its items', () => {
    expect(policyFromRegistry(parseRegQuery(crlf(['', KEY, '']))!)).toEqual({ policy: {}, problems: [] });
    const reading = policyFromRegistry(parseRegQuery(crlf(['', KEY, '    languages    REG_MULTI_SZ    de\\0\\0nl\\0', '']))!);
    expect(reading.policy).toEqual({ languages: ['de', 'nl'] });
    // Output without our key's header (another key, garbage) is not taken for it.
    expect(parseRegQuery(crlf(['', 'HKEY_LOCAL_MACHINE\\Software\\Other', '    idleLockMinutes    REG_DWORD    0x2', '']))).toBeNull();
  });

  it('refuses a value reg.exe passed on in a code page it could not show', async () => {
    const bytes = Buffer.concat([Buffer.from(`\r\n${KEY}\r\n    backupFolder    REG_SZ    D:\\Sauvegardes\\`), Buffer.from([0x82]), Buffer.from('t\r\n    idleLockMinutes    REG_DWORD    0x2\r\n')]);
    const reading = await readRegistryPolicy(async () => ({ code: 0, stdout: bytes }), {});
    expect(reading.policy).toEqual({ idleLockMinutes: 2 });
    expect(reading.problems).toEqual([{ key: 'backupFolder', message: expect.stringMatching(/could not pass on; set this key in the JSON twin policy\.json instead; ignored/) }]);
  });
});

describe('reading the registry', () => {
  it('runs reg.exe by its full path with the key and /s, without a shell', async () => {
    const calls: { file: string; args: readonly string[] }[] = [];
    const reading = await readRegistryPolicy(runner({ code: 0, stdout: FULL_OUTPUT }, calls), { SystemRoot: 'C:\\Windows' });
    expect(calls).toEqual([{ file: 'C:\\Windows\\System32\\reg.exe', args: ['query', 'HKLM\\Software\\Policies\\ClinicInbox', '/s'] }]);
    expect(reading.found).toBe(true);
    expect(reading.policy.idleLockMinutes).toBe(10);
  });

  it('takes exit 1 (no such key) as no registry policy, and any other failure as a reported problem', async () => {
    expect(await readRegistryPolicy(runner({ code: 1, stdout: '' }), {})).toEqual({ found: false, policy: {}, problems: [] });
    const failed = await readRegistryPolicy(runner({ code: 5, stdout: '' }), {});
    expect(failed.problems).toEqual([{ key: null, message: expect.stringMatching(/could not be read \(reg\.exe exit 5\); none of it was applied/) }]);
    const timedOut = await readRegistryPolicy(runner(Object.assign(new Error('timeout'), { killed: true })), {});
    expect(timedOut.problems[0]?.message).toMatch(/reg\.exe timed out/);
    const garbage = await readRegistryPolicy(runner({ code: 0, stdout: 'hello' }), {});
    expect(garbage.problems[0]?.message).toMatch(/unexpected reg\.exe output/);
  });

  it('puts the registry over the JSON twin key by key; an invalid registry value leaves the file’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-reg-'));
    try {
      const filePath = join(dir, 'policy.json');
      writeFileSync(filePath, JSON.stringify({ idleLockMinutes: 4, sendGuardMode: 'warn', backupFolder: 'D:\\Backups', languages: ['en'] }));
      const output = crlf(['', KEY, '    idleLockMinutes    REG_DWORD    0x2', '    sendGuardMode    REG_DWORD    0x1', '    updateChannel    REG_SZ    early', '']);
      const reading = await readManagedPolicy({ platform: 'win32', env: {}, filePath, runReg: runner({ code: 0, stdout: output }) });
      expect(reading.policy).toEqual({ idleLockMinutes: 2, sendGuardMode: 'warn', backupFolder: 'D:\\Backups', languages: ['en'], updateChannel: 'early' });
      expect(reading.problems.map((p) => p.key)).toEqual(['sendGuardMode']);
      expect(reading).toMatchObject({ found: true, path: `HKLM\\Software\\Policies\\ClinicInbox, ${filePath}` });
      // On Linux and macOS reg.exe is never run.
      let ran = false;
      const linux = await readManagedPolicy({ platform: 'linux', filePath, runReg: async () => ((ran = true), { code: 0, stdout: new Uint8Array() }) });
      expect(ran).toBe(false);
      expect(linux.policy.idleLockMinutes).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** regedit's .reg format: "name"="text", dword:hex, hex(2)/hex(7): UTF-16LE bytes (expand / multi string). */
function parseRegFile(text: string): RegKey {
  const key: RegKey = { values: new Map(), subkeys: new Map() };
  const utf16 = (hex: string): string => Buffer.from(hex.split(',').map((b) => Number.parseInt(b, 16))).toString('utf16le');
  for (const line of text.split(/\r?\n/)) {
    const m = /^"([^"]+)"=(.*)$/.exec(line);
    if (!m) continue;
    const [, name, v] = m as unknown as [string, string, string];
    if (v.startsWith('"')) key.values.set(name, { type: 'REG_SZ', data: v.slice(1, -1).replace(/\\\\/g, '\\') });
    else if (v.startsWith('dword:')) key.values.set(name, { type: 'REG_DWORD', data: `0x${v.slice(6).replace(/^0+(?=.)/, '')}` });
    else if (v.startsWith('hex(2):')) key.values.set(name, { type: 'REG_EXPAND_SZ', data: utf16(v.slice(7)).replace(/\0+$/, '') });
    else if (v.startsWith('hex(7):')) key.values.set(name, { type: 'REG_MULTI_SZ', data: utf16(v.slice(7)).replace(/\0+$/, '').split('\0').join('\\0') });
    else throw new Error(`unexpected .reg line for ${name}`);
  }
  return key;
}

describe('what the admin is given', () => {
  it('build/policy-example.reg imports as a valid policy of every value it names', () => {
    const text = readFileSync(join(import.meta.dirname, '../../../build/policy-example.reg'), 'utf8');
    expect(text.startsWith('Windows Registry Editor Version 5.00\r\n')).toBe(true);
    expect(text).toContain('[HKEY_LOCAL_MACHINE\\Software\\Policies\\ClinicInbox]');
    const key = parseRegFile(text);
    const reading = policyFromRegistry(key, { ProgramData: 'C:\\ProgramData' });
    expect(reading.problems).toEqual([]);
    expect(Object.keys(reading.policy).sort()).toEqual([...key.values.keys()].sort());
    expect(reading.policy).toMatchObject({ languages: ['nl', 'en'], backupFolder: 'C:\\ProgramData\\Clinic Inbox\\Backups', twoFactorRequired: true, retentionMinimumDays: 3650 });
  });

  it('docs/it-admin.md lists every key with the registry type the app reads', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../../docs/it-admin.md'), 'utf8');
    const expected = { string: 'REG_SZ', number: 'REG_DWORD', boolean: 'REG_DWORD', list: 'REG_MULTI_SZ' } as const;
    for (const key of POLICY_KEYS) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row, key).toBeDefined();
      expect(row!.split('|')[2], key).toContain(expected[REGISTRY_KINDS[key]]);
    }
  });
});

describe('a Windows desk’s core', () => {
  let opened: { core: CoreHandle; dir: string } | null = null;
  afterEach(async () => {
    if (!opened) return;
    const secrets = await createKeytarSecretStore();
    await opened.core.close();
    for (const account of Object.values(keychainAccounts(opened.core.installationId))) await secrets.delete(account).catch(() => undefined);
    rmSync(opened.dir, { recursive: true, force: true });
    opened = null;
  });

  it('applies and locks what Group Policy set, and shows the admin each bad value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-reg-core-'));
    const output = crlf(['', KEY, '    idleLockMinutes    REG_DWORD    0x3', '    twoFactorRequired    REG_SZ    yes', '']);
    const core = await createCore({
      dataDir: join(dir, 'data'),
      secrets: await createKeytarSecretStore(),
      logger: pino({ level: 'silent' }),
      passwordHashCost: TEST_HASH_COST,
      graph: { baseUrl: 'http://127.0.0.1:9' },
      policyPath: join(dir, 'policy.json'),
      policyFrom: { platform: 'win32', env: {}, runReg: runner({ code: 0, stdout: output }) },
    });
    opened = { core, dir };
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'security.getSettings')).toMatchObject({ idleLockMinutes: 3 });
    const overview = await rpc(admin, 'settings.overview');
    expect(overview.values['idleLockMinutes']).toEqual({ value: 3, locked: true });
    expect(overview.values['twoFactorRequired']?.locked).toBe(false);
    expect(overview.policy).toMatchObject({ found: true, path: 'HKLM\\Software\\Policies\\ClinicInbox', problems: [{ key: 'twoFactorRequired' }] });
    expect(await admin.dispatch('security.updateSettings', { idleLockMinutes: 30 })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
