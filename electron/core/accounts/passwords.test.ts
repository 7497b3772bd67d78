// The password policy (NIST SP 800-63B-4): length is what counts, every character is allowed,
// no composition rules, common passwords and the account's own names refused. First as the pure
// rule, then as a person meets it through the core.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD_MAX } from '../../../shared/rpc';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { TEST_HASH_COST, TEST_PASSWORD, adminConnection, rpc, signIn } from '../testing/users';
import { COMMON_PASSWORD_COUNT, hashSecret, passwordProblem, verifySecret } from './passwords';
import { totpCodeAt } from './totp';

const ctx = { username: 'anna', displayName: 'Anna Smit', clinicName: 'Huisartsenpraktijk Oost', hasSecondFactor: false };
const ok = (password: string, c: Partial<typeof ctx> = {}) => passwordProblem(password, { ...ctx, ...c });
/** `n` characters that are not a common password, not a name, not one repeated character. */
const ofLength = (n: number) => Array.from({ length: n }, (_, i) => 'bcdfghjklmpqrstvwxz'[i % 19]).join('');

describe('the password policy', () => {
  it('asks 15 characters without two-factor and 8 with it', () => {
    expect(ok(ofLength(14))).toMatch(/at least 15 characters/);
    expect(ok(ofLength(15))).toBeNull();
    expect(ok(ofLength(7), { hasSecondFactor: true })).toMatch(/at least 8 characters/);
    expect(ok(ofLength(8), { hasSecondFactor: true })).toBeNull();
  });

  it('allows up to 128 characters and no more', () => {
    expect(PASSWORD_MAX).toBe(128);
    expect(ok(ofLength(128))).toBeNull();
    expect(ok(ofLength(129))).toMatch(/at most 128/);
  });

  it('counts characters, not bytes, and takes any script or emoji', () => {
    expect(ok('🦊🌲🌙🍵🎻🚲🧭🪁🐚🌵🍋🎈🦉🧩🪴')).toBeNull();
    expect(ok('🦊🌲🌙🍵🎻🚲🧭🪁🐚🌵🍋🎈🦉🧩')).toMatch(/at least 15/);
    expect(ok('مرحبا بالعيادة الصغيرة')).toBeNull();
    expect(ok('шестнадцать букв')).toBeNull();
  });

  it('has no composition rules: an all-lowercase passphrase is fine', () => {
    expect(ok('correct horse battery staple')).toBeNull();
  });

  it('refuses the common passwords it ships (tens of thousands of them)', () => {
    expect(COMMON_PASSWORD_COUNT).toBeGreaterThanOrEqual(10_000);
    expect(ok('1qaz2wsx3edc4rfv')).toMatch(/most common/);
    expect(ok('123456789qwerty')).toMatch(/most common/);
    expect(ok('password', { hasSecondFactor: true })).toMatch(/most common/);
    expect(ok('Sunshine', { hasSecondFactor: true })).toMatch(/most common/);
  });

  it('refuses a password containing the username, the name or the clinic’s name', () => {
    expect(ok('my name is anna and i like tea')).toMatch(/username, your name or the clinic/);
    expect(ok('ANNA SMIT likes long walks')).toMatch(/username, your name or the clinic/);
    expect(ok('annasmit likes long walks ok')).toMatch(/username, your name or the clinic/);
    expect(ok('welcome to huisartsenpraktijk oost')).toMatch(/username, your name or the clinic/);
    expect(ok('welcome to huisartsenpraktijk west')).toBeNull();
  });

  it('compares passphrases after NFKC: a full-width passphrase is the same as its ASCII form', async () => {
    const ascii = 'lantern orchard 42';
    const fullWidth = 'ｌａｎｔｅｒｎ\u3000ｏｒｃｈａｒｄ\u3000４２';
    expect(fullWidth).not.toBe(ascii);
    const stored = await hashSecret(fullWidth, TEST_HASH_COST);
    expect(await verifySecret(stored, ascii)).toBe(true);
    expect(await verifySecret(await hashSecret(ascii, TEST_HASH_COST), fullWidth)).toBe(true);
    expect(await verifySecret(stored, 'lantern orchard 43')).toBe(false);
    // Composed and decomposed accents are one password too.
    expect(await verifySecret(await hashSecret('cafe\u0301 au lait tous les jours', TEST_HASH_COST), 'caf\u00e9 au lait tous les jours')).toBe(true);
  });
});

describe('the policy as a person meets it', () => {
  let s: SeededCore;
  beforeAll(async () => {
    s = await startSeededCore();
  });
  afterAll(() => s?.stop());

  it('refuses a short, common or clinic-named new password with PASSWORD_REJECTED (the rule as a reason code in its details), and takes 8 characters once two-factor is on', async () => {
    const admin = await adminConnection(s.core);
    await rpc(admin, 'security.updateSettings', { clinicName: 'Praktijk Zuid' });
    const anna = await signIn(s.core, { username: 'anna', displayName: 'Anna Smit', roles: ['receptionist'] });
    const change = (newPassword: string) => anna.dispatch('auth.changePassword', { currentPassword: TEST_PASSWORD, newPassword });
    expect(await change(ofLength(14))).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED', details: { reason: 'too_short', min: 15 } } });
    expect(await change('qazwsxedcrfvtgb')).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED', details: { reason: 'common' } } });
    expect(await change('greetings from praktijk zuid')).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED', details: { reason: 'contains_name' } } });
    expect(await change(ofLength(129))).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED', details: { reason: 'too_long', max: 128 } } });
    expect(await change(TEST_PASSWORD)).toMatchObject({ ok: false, error: { code: 'PASSWORD_REJECTED', details: { reason: 'unchanged' } } });
    expect(await admin.dispatch('users.create', { username: 'bram', displayName: 'Bram', roles: ['receptionist'], password: 'short pass' })).toMatchObject({
      ok: false,
      error: { code: 'PASSWORD_REJECTED', details: { reason: 'too_short' } },
    });

    const { secret } = await rpc(anna, 'auth.twoFactor.begin', { password: TEST_PASSWORD });
    await rpc(anna, 'auth.twoFactor.confirm', { code: totpCodeAt(secret, s.clock.now()) });
    expect(await change('tulip#07')).toMatchObject({ ok: true });
    expect(await change('tulip#8')).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await anna.dispatch('auth.changePassword', { currentPassword: 'tulip#07', newPassword: 'tulip#8' })).toMatchObject({
      ok: false,
      error: { code: 'PASSWORD_REJECTED', details: { reason: 'too_short', min: 8 } },
    });
  });
});
