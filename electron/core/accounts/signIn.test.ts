// Failed sign-ins at the desk: the first two cost nothing, then each wait doubles (and an attempt
// inside the wait is not even checked), ten in a row lock the account until an admin unlocks it or
// 15 minutes pass. The desk's own count slows every username typed there, not other desks. Every
// failure is in the audit log, never with the password, and an unknown username is not stored.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcResult } from '../../../shared/rpc';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { TEST_PASSWORD, adminConnection, rpc, signIn, type Person } from '../testing/users';
import type { Connection } from '../types';
import { LOCKOUT_AFTER_FAILURES, delayAfterFailures } from './throttle';

const WRONG = `wrong-${randomBytes(6).toString('hex')}-password`;
const ANNA: Person = { username: 'anna', displayName: 'Anna', roles: ['receptionist'] };
const BRAM: Person = { username: 'bram', displayName: 'Bram', roles: ['receptionist'] };

let s: SeededCore;
let admin: Connection;
let failures = 0;

async function attempt(origin: string, username: string, password: string): Promise<RpcResult<unknown>> {
  const connection = s.core.connect(origin);
  const result = await connection.dispatch('auth.signIn', { username, password });
  connection.close();
  if (!result.ok) failures += 1;
  return result;
}
const refused = (code: string, message?: RegExp) => ({ ok: false, error: { code, ...(message ? { message: expect.stringMatching(message) } : {}) } });
const signedIn = { ok: true, value: { status: 'signed_in' } };

/** Fails `n` times in a row at `origin`, waiting out each delay before the next attempt. */
async function failInARow(origin: string, username: string, n: number): Promise<RpcResult<unknown>> {
  let last: RpcResult<unknown> | null = null;
  for (let i = 1; i <= n; i++) {
    last = await attempt(origin, username, WRONG);
    expect(last).not.toMatchObject(refused('RATE_LIMITED'));
    s.clock.advance(delayAfterFailures(i));
  }
  return last!;
}

beforeAll(async () => {
  s = await startSeededCore();
  admin = await adminConnection(s.core);
  await signIn(s.core, ANNA);
  await signIn(s.core, BRAM);
});
afterAll(() => s?.stop());

describe('failed sign-ins', () => {
  it('costs nothing for two mistakes, then makes each next attempt wait longer without checking it', async () => {
    const desk = 'desk-delay';
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED', /Wrong username or password/));
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    // Three in a row: the next attempt waits 1 s, and inside the wait even the right password is refused unchecked.
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /in 1 s/));
    s.clock.advance(999);
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /in 1 s/));
    s.clock.advance(1);
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /in 2 s/));
    s.clock.advance(2000);
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /in 4 s/));
    s.clock.advance(4000);
    // The right password after the wait signs in and starts the count again.
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(signedIn);
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(signedIn);
  });

  it('locks the account after ten failures in a row, even against the right password, until an admin unlocks it', async () => {
    const desk = 'desk-lockout';
    expect(await failInARow(desk, 'anna', LOCKOUT_AFTER_FAILURES - 1)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', WRONG)).toMatchObject(refused('ACCOUNT_LOCKED', /locked for 15 minutes or until an admin unlocks it/));
    // The desk first makes the next attempt wait a minute; after it, the account's lock answers.
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /in 60 s/));
    s.clock.advance(60_000);
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('ACCOUNT_LOCKED', /Try again in 14 min/));
    // Another desk does not help: the lock is the account's.
    expect(await attempt('desk-other', 'anna', TEST_PASSWORD)).toMatchObject(refused('ACCOUNT_LOCKED'));
    const users = await rpc(admin, 'users.list');
    const anna = users.find((u) => u.username === 'anna')!;
    expect(anna.lockedUntil).toBeGreaterThan(s.clock.now());

    expect((await rpc(admin, 'users.unlock', { userId: anna.id })).lockedUntil).toBeNull();
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(signedIn);
  });

  it('lifts the lockout by itself after 15 minutes', async () => {
    const desk = 'desk-timeout';
    expect(await failInARow(desk, 'bram', LOCKOUT_AFTER_FAILURES)).toMatchObject(refused('ACCOUNT_LOCKED'));
    s.clock.advance(13 * 60_000);
    expect(await attempt(desk, 'bram', TEST_PASSWORD)).toMatchObject(refused('ACCOUNT_LOCKED', /in 1 min/));
    s.clock.advance(60_000);
    expect(await attempt(desk, 'bram', TEST_PASSWORD)).toMatchObject(signedIn);
  });

  it('slows every username typed at a desk that keeps failing, but not another desk', async () => {
    const desk = 'desk-shared';
    expect(await attempt(desk, 'nobody-one', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'nobody-two', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'bram', WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(refused('RATE_LIMITED', /at this desk.*in 1 s/));
    expect(await attempt('desk-next-door', 'anna', TEST_PASSWORD)).toMatchObject(signedIn);
    s.clock.advance(1000);
    expect(await attempt(desk, 'anna', TEST_PASSWORD)).toMatchObject(signedIn);
  });

  it('audits every failure as login_failed, never with the password, and an unknown username as "unknown"', async () => {
    const typed = `typo-${randomBytes(4).toString('hex')}`;
    expect(await attempt('desk-audit', typed, WRONG)).toMatchObject(refused('UNAUTHENTICATED'));
    const rows = s.read((db) => db.prepare('SELECT * FROM audit_log ORDER BY seq').all()) as Record<string, unknown>[];
    const failed = rows.filter((r) => r['action'] === 'login_failed');
    expect(failed).toHaveLength(failures);
    expect(new Set(failed.map((r) => r['error_code']))).toEqual(new Set(['UNAUTHENTICATED', 'RATE_LIMITED', 'ACCOUNT_LOCKED']));
    for (const r of failed) expect(r).toMatchObject({ method: 'auth.signIn', outcome: 'denied', session_id: null });
    expect(failed.at(-1)).toMatchObject({ user_id: 'unknown', display_name: null, role: '-', origin: 'desk-audit' });
    const annaFailures = failed.filter((r) => r['display_name'] === 'Anna');
    expect(annaFailures.length).toBeGreaterThan(10);
    expect(annaFailures[0]).toMatchObject({ user_id: expect.stringMatching(/^u_/), role: 'receptionist' });

    const everything = JSON.stringify(rows);
    expect(everything).not.toContain(WRONG);
    expect(everything).not.toContain(typed);
    expect(everything).not.toContain('nobody-one');
    expect(s.logLines.join('')).not.toContain(WRONG);
    expect(s.logLines.join('')).not.toContain(typed);
    const files = readdirSync(s.dataDir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) {
      const bytes = readFileSync(join(f.parentPath, f.name));
      expect(bytes.includes(Buffer.from(WRONG)), f.name).toBe(false);
      expect(bytes.includes(Buffer.from(typed)), f.name).toBe(false);
    }
  });
});
