// The managed policy as IT deploys it: each key overrides its setting on a real core (real
// keychain, real SQLCipher file) and locks it; a bad file is reported and ignored key by key.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePolicy, POLICY_KEYS, type Policy } from '../../../shared/policy';
import { policyJsonSchema, POLICY_SCHEMA_FILE } from '../../../scripts/policySchema';
import { createCore, type CoreHandle } from '../createCore';
import { keychainAccounts } from '../keys/accounts';
import { createKeytarSecretStore } from '../keys/secretStore';
import { TEST_HASH_COST, adminConnection, rpc } from '../testing/users';
import { policyLocation } from './policyFile';
import { UPDATE_RESTART_FILE, UPDATE_SETTINGS_FILE, UPDATE_STATE_FILE } from './service';

const FULL: Required<Policy> = {
  updateUrl: 'https://updates.hospital.example/clinic-inbox/',
  updateChannel: 'early',
  allowedVersion: '0.0.9',
  updateDeferralDays: 3,
  allowedRelayUrl: 'https://relay.hospital.example',
  idleLockMinutes: 2,
  twoFactorRequired: true,
  retentionMinimumDays: 3650,
  backupFolder: '/srv/backups/clinic-inbox',
  sendGuardMode: 'block',
  languages: ['nl', 'en'],
};

const opened: { core: CoreHandle; dir: string }[] = [];
afterEach(async () => {
  const secrets = await createKeytarSecretStore();
  for (const { core, dir } of opened.splice(0)) {
    await core.close();
    for (const account of Object.values(keychainAccounts(core.installationId))) await secrets.delete(account).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

async function coreWithPolicy(policyText: string | null): Promise<{ core: CoreHandle; dir: string; logs: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-policy-'));
  const policyPath = join(dir, 'policy.json');
  if (policyText !== null) writeFileSync(policyPath, policyText);
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => void (logs.push(String(c)), done()) }));
  const core = await createCore({ dataDir: join(dir, 'data'), secrets: await createKeytarSecretStore(), logger, policyPath, passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' } });
  opened.push({ core, dir });
  return { core, dir, logs };
}

describe('policy file', () => {
  it('is read from the documented place on each OS', () => {
    expect(policyLocation('linux')).toBe('/etc/clinic-inbox/policy.json');
    expect(policyLocation('darwin')).toBe('/Library/Application Support/Clinic Inbox/policy.json');
    expect(policyLocation('win32', { ProgramData: 'C:\\ProgramData' })).toMatch(/^C:\\ProgramData.Clinic Inbox.policy\.json$/);
  });

  it('accepts every key alone, and reports each bad one without touching the good ones', () => {
    for (const key of POLICY_KEYS) expect(parsePolicy(JSON.stringify({ [key]: FULL[key] }))).toEqual({ policy: { [key]: FULL[key] }, problems: [] });
    const reading = parsePolicy(JSON.stringify({ idleLockMinutes: 'ten', updateUrl: 'http://plain.example', languages: ['fr'], colour: 'red', updateChannel: 'early' }));
    expect(reading.policy).toEqual({ updateChannel: 'early' });
    expect(reading.problems.map((p) => p.key).sort()).toEqual(['colour', 'idleLockMinutes', 'languages', 'updateUrl']);
    expect(parsePolicy('{ not json').problems).toEqual([{ key: null, message: expect.stringMatching(/not valid JSON; none of it was applied/) }]);
    expect(parsePolicy('[1]').policy).toEqual({});
  });

  it('has a published JSON Schema that is current (npm run policy-schema)', () => {
    expect(readFileSync(POLICY_SCHEMA_FILE, 'utf8')).toBe(policyJsonSchema());
  });
});

describe('policy on a running core', () => {
  it('overrides each setting it names, locks it, and refuses a different value whole', async () => {
    const { core, dir } = await coreWithPolicy(JSON.stringify({ ...FULL, twoFactorRequired: false }));
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'security.getSettings')).toMatchObject({ idleLockMinutes: 2, requireTwoFactorForAdmins: false });
    expect(await rpc(admin, 'backup.getSettings')).toMatchObject({ destination: FULL.backupFolder });

    const overview = await rpc(admin, 'settings.overview');
    for (const key of POLICY_KEYS) expect(overview.values[key]?.locked, key).toBe(true);
    expect(overview.values['idleLockMinutes']?.value).toBe(2);
    expect(overview.updates).toMatchObject({ url: FULL.updateUrl, channel: 'early' });
    expect(overview.policy).toMatchObject({ found: true, problems: [], notEnforced: [] });
    expect(overview.values['retentionMinimumDays']?.value).toBe(3650);

    const refused = await admin.dispatch('security.updateSettings', { idleLockMinutes: 30, clinicName: 'Praxis Nord' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'FORBIDDEN', message: expect.stringMatching(/set by your organisation/) } });
    expect(await rpc(admin, 'security.getSettings')).toMatchObject({ idleLockMinutes: 2, clinicName: '' });
    // The same value (a form sending every field) is not a change and passes.
    expect(await rpc(admin, 'security.updateSettings', { idleLockMinutes: 2, clinicName: 'Praxis Nord' })).toMatchObject({ clinicName: 'Praxis Nord' });

    expect(await admin.dispatch('backup.updateSettings', { destination: '/tmp/elsewhere' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await admin.dispatch('settings.updateUpdates', { channel: 'stable' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await admin.dispatch('setup.pair', { relayUrl: 'https://relay.attacker.example', code: 'ABCD-EFGH' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringContaining('https://relay.hospital.example') },
    });
    // The privacy feature's send guard and retention minimum follow the policy too.
    expect(await rpc(admin, 'privacy.getSettings')).toEqual({ sendGuard: 'block' });
    expect(await admin.dispatch('privacy.updateSettings', { sendGuard: 'warn' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const rules = await rpc(admin, 'privacy.retention.get');
    expect(rules.rules.filter((r) => r.kind === 'messages' || r.kind === 'media').every((r) => r.legalMinimumDays === 3650 && r.days >= 3650)).toBe(true);
    expect(await admin.dispatch('privacy.retention.update', { rules: [{ kind: 'messages', days: 400, legalMinimumDays: 0 }] })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    // The shell's updater reads the effective update settings from the data folder.
    expect(JSON.parse(readFileSync(join(dir, 'data', UPDATE_SETTINGS_FILE), 'utf8'))).toMatchObject({ url: FULL.updateUrl, channel: 'early', allowedVersion: '0.0.9', deferralDays: 3 });
  });

  it('tells every screen, signed in or not, which languages it may offer', async () => {
    const { core } = await coreWithPolicy(JSON.stringify({ languages: ['de'] }));
    expect(await rpc(core.connect('desk'), 'settings.languages')).toEqual({ allowed: ['de'] });
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'settings.languages')).toEqual({ allowed: ['de'] });
    const { core: open } = await coreWithPolicy(null);
    expect(await rpc(open.connect('desk'), 'settings.languages')).toEqual({ allowed: null });
  });

  it('makes two-factor required for admins and auditors', async () => {
    const { core } = await coreWithPolicy(JSON.stringify({ twoFactorRequired: true }));
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'session.whoami')).toMatchObject({ signedIn: true, mustEnrolTwoFactor: true });
  });

  it('without a policy, settings stay the admin’s to change', async () => {
    const { core } = await coreWithPolicy(null);
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'security.updateSettings', { idleLockMinutes: 30 })).toMatchObject({ idleLockMinutes: 30 });
    const overview = await rpc(admin, 'settings.overview');
    expect(Object.values(overview.values).every((v) => !v.locked)).toBe(true);
    expect(await rpc(admin, 'settings.updateUpdates', { url: 'https://updates.example/', channel: 'early' })).toEqual({ url: 'https://updates.example/', channel: 'early' });
  });

  it('passes "Restart to update" to the shell only when a verified update is ready', async () => {
    const { core, dir } = await coreWithPolicy(null);
    const admin = await adminConnection(core);
    expect(await rpc(admin, 'updates.restartNow')).toEqual({ requested: false });
    expect(existsSync(join(dir, 'data', UPDATE_RESTART_FILE))).toBe(false);
    writeFileSync(join(dir, 'data', UPDATE_STATE_FILE), JSON.stringify({ phase: 'ready', version: '0.2.0', checkedAt: 1, problem: null, installBy: null }));
    expect((await rpc(admin, 'settings.overview')).updates.state).toMatchObject({ phase: 'ready', version: '0.2.0' });
    expect(await rpc(admin, 'updates.restartNow')).toEqual({ requested: true });
    expect(existsSync(join(dir, 'data', UPDATE_RESTART_FILE))).toBe(true);
  });

  it('reports a bad file to admins and in the log, and applies only its good keys', async () => {
    const { core, logs } = await coreWithPolicy(JSON.stringify({ idleLockMinutes: 'ten', backupFolder: '', updateChannel: 'early', colour: 'red' }));
    const admin = await adminConnection(core);
    const overview = await rpc(admin, 'settings.overview');
    expect(overview.policy.problems.map((p) => p.key).sort()).toEqual(['backupFolder', 'colour', 'idleLockMinutes']);
    expect(overview.values['updateChannel']).toEqual({ value: 'early', locked: true });
    expect(overview.values['idleLockMinutes']).toEqual({ value: 5, locked: false });
    expect((await rpc(admin, 'status.health')).policyProblems).toBe(3);
    const warnings = logs.filter((l) => l.includes('managed policy:'));
    expect(warnings).toHaveLength(3);
    expect(warnings.join('')).not.toContain('ten');
  });

  it('ignores a file that is not JSON at all, and says so', async () => {
    const { core } = await coreWithPolicy('idleLockMinutes = 2');
    const admin = await adminConnection(core);
    const overview = await rpc(admin, 'settings.overview');
    expect(overview.policy.problems).toHaveLength(1);
    expect(Object.values(overview.values).some((v) => v.locked)).toBe(false);
  });
});
