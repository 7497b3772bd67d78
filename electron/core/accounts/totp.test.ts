// Two-factor sign-in with codes computed as an authenticator app would (RFC 6238 from the secret
// the enrolment shows): one code confirms the enrolment, each code works once, old codes do not,
// recovery codes work once each, the secret is sealed in the database, and an admin can remove it.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcResult } from '../../../shared/rpc';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { TEST_PASSWORD, adminConnection, rpc, signIn, type Person } from '../testing/users';
import type { Connection } from '../types';
import { totpCodeAt } from './totp';

const ANNA: Person = { username: 'anna', displayName: 'Anna', roles: ['receptionist'] };
let s: SeededCore;
let admin: Connection;
let desk = 0;

/** Each attempt from its own desk, so the desk's delay never hides what the code check says. */
async function signInWith(secondFactor?: string): Promise<{ result: RpcResult<unknown>; connection: Connection }> {
  const connection = s.core.connect(`totp-desk-${++desk}`);
  const result = await connection.dispatch('auth.signIn', { username: ANNA.username, password: TEST_PASSWORD, ...(secondFactor ? { secondFactor } : {}) });
  return { result, connection };
}
const invalid = { ok: false, error: { code: 'SECOND_FACTOR_INVALID' } };
const signedIn = { ok: true, value: { status: 'signed_in' } };

beforeAll(async () => {
  s = await startSeededCore();
  admin = await adminConnection(s.core);
});
afterAll(() => s?.stop());

describe('two-factor sign-in (TOTP)', () => {
  it('enrols with one valid code, then asks for a code at sign-in and takes each code once', async () => {
    const anna = await signIn(s.core, ANNA);
    expect(await anna.dispatch('auth.twoFactor.begin', { password: 'not my password at all' })).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    const { secret, otpauthUri, qrSvg } = await rpc(anna, 'auth.twoFactor.begin', { password: TEST_PASSWORD });
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toContain(`secret=${secret}`);
    expect(qrSvg).toMatch(/^<svg/);
    // Until it is confirmed, nothing changes at sign-in.
    expect((await signInWith()).result).toMatchObject(signedIn);

    const wrong = totpCodeAt(secret, s.clock.now() + 10 * 60_000);
    expect(await anna.dispatch('auth.twoFactor.confirm', { code: wrong })).toMatchObject(invalid);
    const { recoveryCodes } = await rpc(anna, 'auth.twoFactor.confirm', { code: totpCodeAt(secret, s.clock.now()) });
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    expect(await rpc(anna, 'session.whoami')).toMatchObject({ twoFactor: true });

    // The password alone no longer signs in, and binds nothing to the connection.
    const half = await signInWith();
    expect(half.result).toEqual({ ok: true, value: { status: 'second_factor_required' } });
    expect(await rpc(half.connection, 'session.whoami')).toEqual({ signedIn: false });

    s.clock.advance(30_000);
    const code = totpCodeAt(secret, s.clock.now());
    const full = await signInWith(code);
    expect(full.result).toMatchObject(signedIn);
    expect(await rpc(full.connection, 'session.whoami')).toMatchObject({ signedIn: true, username: 'anna', twoFactor: true });
    // The same code again (someone watched it being typed) is refused.
    expect((await signInWith(code)).result).toMatchObject(invalid);
    // A code from two minutes ago is refused.
    s.clock.advance(30_000);
    expect((await signInWith(totpCodeAt(secret, s.clock.now() - 120_000))).result).toMatchObject(invalid);
    expect((await signInWith('123')).result).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    // The next code works.
    expect((await signInWith(totpCodeAt(secret, s.clock.now()))).result).toMatchObject(signedIn);

    // Recovery codes: each once; typed in capitals without the dash is the same code.
    const [first, second] = recoveryCodes;
    expect((await signInWith(first)).result).toMatchObject(signedIn);
    expect((await signInWith(first)).result).toMatchObject(invalid);
    expect((await signInWith(second!.replace('-', '').toUpperCase())).result).toMatchObject(signedIn);
    expect((await signInWith(second)).result).toMatchObject(invalid);

    // The secret is sealed: not in the users row, nor anywhere in the data folder, in the clear.
    const row = s.read((db) => db.prepare(`SELECT * FROM users WHERE username = 'anna'`).get()) as Record<string, unknown>;
    expect(row['totp_secret_sealed']).toEqual(expect.any(String));
    expect(row['totp_pending_sealed']).toBeNull();
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(JSON.stringify(row).toLowerCase()).not.toContain(secret.toLowerCase());
    const recoveryRows = s.read((db) => db.prepare('SELECT code_hash FROM recovery_codes').pluck().all()) as string[];
    expect(recoveryRows).toHaveLength(10);
    for (const c of recoveryCodes) expect(JSON.stringify(recoveryRows)).not.toContain(c);
    for (const f of readdirSync(s.dataDir)) expect(readFileSync(join(s.dataDir, f)).includes(Buffer.from(secret)), f).toBe(false);
    // Nor in the audit log or the log.
    const audit = JSON.stringify(s.read((db) => db.prepare('SELECT * FROM audit_log').all()));
    expect(audit).not.toContain(secret);
    expect(audit).not.toContain(code);
    expect(s.logLines.join('')).not.toContain(secret);
  });

  it('is removed by an admin (a lost phone): the password alone signs in again', async () => {
    const user = (await rpc(admin, 'users.list')).find((u) => u.username === 'anna')!;
    expect(user.twoFactor).toBe(true);
    expect((await rpc(admin, 'users.resetTwoFactor', { userId: user.id })).twoFactor).toBe(false);
    expect((await signInWith()).result).toMatchObject(signedIn);
    expect(s.read((db) => db.prepare(`SELECT count(*) FROM recovery_codes`).pluck().get())).toBe(0);
    const entry = s.read((db) => db.prepare(`SELECT action, outcome, user_id FROM audit_log WHERE method = 'users.resetTwoFactor'`).get());
    expect(entry).toMatchObject({ action: 'configure', outcome: 'ok', user_id: expect.stringMatching(/^u_/) });
  });
});
