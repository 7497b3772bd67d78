// The locked-out IT admin at the console: `npm run core -- --data-dir DIR admin-reset --user NAME`
// with the recovery key on stdin prints a one-time password that signs in (and must be changed);
// a wrong recovery key changes nothing, exits non-zero and is in the audit log.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { IT_ADMIN, TEST_PASSWORD, adminConnection, rpc } from '../testing/users';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const NEW_PASSWORD = 'granite window puffin 77';

let s: SeededCore;
let recoveryKey: string;

function adminReset(dataDir: string, user: string, key: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'electron/core/main.ts', '--data-dir', dataDir, '--log-level', 'warn', 'admin-reset', '--user', user], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(`${key}\n`);
  });
}

beforeAll(async () => {
  s = await startSeededCore();
  const admin = await adminConnection(s.core);
  ({ recoveryKey } = await rpc(admin, 'recovery.create', {}));
  await s.closeCore();
});
afterAll(() => s?.stop());

describe('admin-reset on the console', () => {
  it('prints a one-time password for the user, which signs in and must be changed', async () => {
    const run = await adminReset(s.dataDir, IT_ADMIN.username, recoveryKey);
    expect(run.code, run.stderr).toBe(0);
    const oneTime = /^\s+([a-z2-9]{4}(?:-[a-z2-9]{4}){3})$/m.exec(run.stdout)?.[1];
    expect(oneTime, run.stdout).toBeDefined();
    expect(run.stdout + run.stderr).not.toContain(recoveryKey);

    const core = await s.reopen();
    const desk = core.connect('desk');
    expect(await desk.dispatch('auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    await rpc(desk, 'auth.signIn', { username: IT_ADMIN.username, password: oneTime });
    expect(await rpc(desk, 'session.whoami')).toMatchObject({ state: 'password_change', roles: ['admin'] });
    expect(await desk.dispatch('users.list', {})).toMatchObject({ ok: false, error: { code: 'PASSWORD_CHANGE_REQUIRED' } });
    await rpc(desk, 'auth.changePassword', { newPassword: NEW_PASSWORD });
    expect(await desk.dispatch('users.list', {})).toMatchObject({ ok: true });
    const entry = s.read((db) => db.prepare(`SELECT user_id, display_name, action, outcome, origin FROM audit_log WHERE method = 'cli.admin-reset'`).all());
    expect(entry).toEqual([{ user_id: 'console', display_name: expect.stringMatching(/^Console operator /), action: 'update', outcome: 'ok', origin: 'cli' }]);
  });

  it('changes nothing with a wrong recovery key, exits non-zero, and audits the attempt', async () => {
    await s.closeCore();
    const last = recoveryKey.at(-1) === 'A' ? 'B' : 'A';
    const wrong = `${recoveryKey.slice(0, -1)}${last}`;
    for (const key of [wrong, 'not a recovery key']) {
      const run = await adminReset(s.dataDir, IT_ADMIN.username, key);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/RECOVERY_KEY_(WRONG|INVALID)/);
      expect(run.stdout).not.toMatch(/One-time password/);
    }
    const core = await s.reopen();
    expect(await core.connect('desk').dispatch('auth.signIn', { username: IT_ADMIN.username, password: NEW_PASSWORD })).toMatchObject({
      ok: true,
      value: { status: 'signed_in', whoami: { state: 'active' } },
    });
    const rows = s.read((db) => db.prepare(`SELECT * FROM audit_log WHERE method = 'cli.admin-reset' ORDER BY seq`).all()) as Record<string, unknown>[];
    expect(rows.map((r) => [r['action'], r['outcome'], r['error_code']])).toEqual([
      ['update', 'ok', null],
      ['login_failed', 'denied', expect.stringMatching(/^RECOVERY_KEY_/)],
      ['login_failed', 'denied', expect.stringMatching(/^RECOVERY_KEY_/)],
    ]);
    expect(JSON.stringify(rows)).not.toContain(wrong);
  });
});
