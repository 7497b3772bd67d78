/**
 * Two-factor sign-in as a receptionist meets it, in a real browser against the real core: she
 * opens her account, sets up an authenticator (the key read off the screen, codes computed with
 * `otpauth` as her phone would), a wrong code is refused, the right one shows the ten recovery
 * codes once; signing in then asks for a code, a code already used is refused, a recovery code
 * works once. Then, in Dutch, the password policy's refusal is worded in Dutch.
 * Run with `node scripts/test.mjs --vitest-only tests/ui/twoFactor.test.ts`.
 */
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesk, RECEPTIONIST, runAxe, screenshot, TEST_PASSWORD, type Desk } from './stack';

let desk: Desk;
let page: Page;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST] });
  page = desk.page;
}, 120_000);

afterAll(() => desk?.close());

const PERIOD_MS = 30_000;
const stepAt = (ms: number): number => Math.floor(ms / PERIOD_MS);
const totp = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });

/** The code of the first 30-second step after `afterStep`, waiting for it as a person would. */
async function codeAfter(secret: string, afterStep: number): Promise<{ code: string; step: number }> {
  while (stepAt(Date.now()) <= afterStep) await new Promise((r) => setTimeout(r, 250));
  const now = Date.now();
  return { code: totp(secret).generate({ timestamp: now }), step: stepAt(now) };
}

/** Signing out sits in her account dialog. */
async function signOut(): Promise<void> {
  const account = page.getByTestId('my-account');
  if (!(await account.isVisible())) await page.getByRole('button', { name: `My account: ${RECEPTIONIST.displayName}` }).click();
  await account.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByTestId('sign-in').waitFor();
}

/** Username and password; the form then asks for the second factor. */
async function passwordStep(): Promise<void> {
  const form = page.getByTestId('sign-in');
  await form.getByLabel('Username').fill(RECEPTIONIST.username);
  await form.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
  await form.getByRole('button', { name: 'Sign in', exact: true }).click();
  await form.getByLabel('Code from your authenticator app').waitFor();
}

async function enterCode(code: string): Promise<void> {
  const form = page.getByTestId('sign-in');
  await form.getByLabel('Code from your authenticator app').fill(code);
  await form.getByRole('button', { name: 'Continue', exact: true }).click();
}

const refusal = () => page.getByTestId('sign-in').getByRole('alert');

describe('two-factor sign-in', () => {
  let secret = '';
  let lastStep = 0;
  let recoveryCodes: string[] = [];

  it('a receptionist enrols an authenticator from her account: a wrong code is refused, the right one shows ten recovery codes once', async () => {
    await desk.signInAs(RECEPTIONIST);
    await page.getByRole('button', { name: `My account: ${RECEPTIONIST.displayName}` }).click();
    const account = page.getByTestId('my-account');
    await account.waitFor();
    await expect.poll(() => account.getByTestId('two-factor-state').textContent()).toMatch(/^Off/);
    await account.getByRole('button', { name: 'Set up two-factor' }).click();
    await account.locator('#totp-password').fill(TEST_PASSWORD);
    await account.getByRole('button', { name: 'Set up two-factor' }).click();

    // What her phone would read: the key under the QR code (grouped by four for typing).
    const shown = account.getByTestId('totp-secret');
    await shown.waitFor();
    expect(await account.getByTestId('totp-qr').isVisible()).toBe(true);
    secret = ((await shown.textContent()) ?? '').replace(/\s+/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await screenshot(page, 'two-factor-01-scan');
    expect(await runAxe(page)).toEqual([]);

    const now = Date.now();
    const right = totp(secret).generate({ timestamp: now });
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    await account.getByLabel('The 6-digit code the app shows').fill(wrong);
    await account.getByRole('button', { name: 'Confirm', exact: true }).click();
    await expect.poll(() => account.getByRole('alert').textContent()).toMatch(/not right/);
    expect(await account.getByTestId('recovery-codes').count()).toBe(0);

    await account.getByLabel('The 6-digit code the app shows').fill(right);
    await account.getByRole('button', { name: 'Confirm', exact: true }).click();
    const codes = account.getByTestId('recovery-codes');
    await codes.waitFor();
    lastStep = stepAt(now);
    recoveryCodes = (await codes.locator('li').allTextContents()).map((c) => c.trim());
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const c of recoveryCodes) expect(c).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}$/i);
    await screenshot(page, 'two-factor-02-recovery-codes');
    expect(await runAxe(page)).toEqual([]);

    // Closed only once she says she stored them; then they are gone for good.
    const done = codes.getByRole('button', { name: 'Done' });
    expect(await done.isDisabled()).toBe(true);
    await codes.getByLabel('I stored these codes somewhere safe.').check();
    await done.click();
    expect(await codes.count()).toBe(0);
    await expect.poll(() => account.getByTestId('two-factor-state').textContent()).toMatch(/^On/);
    expect(await account.textContent()).not.toContain(recoveryCodes[0]);
    await signOut();
  }, 90_000);

  it('signing in asks for the code; a code already used is refused; a recovery code works once', async () => {
    await passwordStep();
    await screenshot(page, 'two-factor-03-code-asked');
    // The code she confirmed with is spent: the next step's code lets her in.
    const next = await codeAfter(secret, lastStep);
    await enterCode(next.code);
    await page.getByTestId('sign-in').waitFor({ state: 'detached' });
    await signOut();

    await passwordStep();
    await enterCode(next.code);
    await expect.poll(() => refusal().textContent()).toMatch(/not right, or was used already/);
    await screenshot(page, 'two-factor-04-code-reused');

    await enterCode(recoveryCodes[0]!);
    await page.getByTestId('sign-in').waitFor({ state: 'detached' });
    await signOut();

    await passwordStep();
    await enterCode(recoveryCodes[0]!);
    await expect.poll(() => refusal().textContent()).toMatch(/not right, or was used already/);
    await enterCode(recoveryCodes[1]!);
    await page.getByTestId('sign-in').waitFor({ state: 'detached' });
  }, 90_000);

  it('in Dutch, a refused new password says why in Dutch', async () => {
    await page.locator('#lang').selectOption('nl');
    await page.getByRole('button', { name: `Mijn account: ${RECEPTIONIST.displayName}` }).click();
    const account = page.getByTestId('my-account');
    await account.waitFor();
    const form = account.locator('section[aria-labelledby="account-password"]');
    const tryPassword = async (next: string): Promise<string | null> => {
      await form.getByLabel('Huidig wachtwoord').fill(TEST_PASSWORD);
      await form.getByLabel('Nieuw wachtwoord', { exact: true }).fill(next);
      await form.getByLabel('Nogmaals het nieuwe wachtwoord').fill(next);
      await form.getByRole('button', { name: 'Wachtwoord wijzigen' }).click();
      const rejected = form.getByTestId('password-rejected');
      await rejected.waitFor();
      return rejected.textContent();
    };
    // With two-factor on, 8 characters suffice: the core's reason code carries the number.
    expect(await tryPassword('kort')).toBe('Gebruik minstens 8 tekens. Een paar woorden vormen een goede wachtzin.');
    expect(await tryPassword('sanne houdt van fietsen')).toBe('Het wachtwoord mag uw gebruikersnaam, uw naam of de naam van de praktijk niet bevatten.');
    await screenshot(page, 'two-factor-05-dutch-refusal');
  }, 60_000);
});
