/**
 * The admin's "Users & sessions" screen in a real browser against the real core and relay: adding a
 * receptionist with a one-time password, their first sign-in in another window, and the admin ending
 * that session. Run with `node scripts/test.mjs --vitest-only tests/ui/admin.test.ts`.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IT_ADMIN, openBrowser, openDesk, runAxe, screenshot, type Browser, type Desk } from './stack';

/** Made through the screen by the admin, so not one of stack.ts's ready-made people. */
const SANNE = { displayName: 'Noor Bakker', username: 'noor' };
const ONE_TIME = 'copper meadow lantern 9';
const OWN_PASSWORD = 'quiet river basket 31';

let desk: Desk;
let page: Page;
let second: Browser | null = null;

/** Signs a second window in through its sign-in form (desk.signInAs drives the desk's own page). */
async function signInThroughPage(p: Page, username: string, password: string): Promise<void> {
  const form = p.getByTestId('sign-in');
  await form.waitFor({ timeout: 20_000 });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password', { exact: true }).fill(password);
  await form.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function expectNoAxeViolations(p: Page, screen: string): Promise<void> {
  const violations = await runAxe(p);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

beforeAll(async () => {
  desk = await openDesk({ setUp: {} });
  page = desk.page;
}, 180_000);

afterAll(async () => {
  await second?.close();
  await desk?.close();
});

describe("the admin's users & sessions screen", () => {
  it('adds a receptionist with a one-time password; the policy and the core’s refusal show at the field', async () => {
    await desk.signInAs(IT_ADMIN);
    await page.getByRole('navigation').getByRole('button', { name: 'Users & sessions' }).click();
    await page.getByTestId('admin-screen').waitFor();
    await page.getByTestId('users-table').locator(`tr[data-username="${IT_ADMIN.username}"]`).waitFor();
    expect(await page.getByText('At least 15 characters (8 with two-factor)').count()).toBe(1);

    await page.getByLabel('Name', { exact: true }).fill(SANNE.displayName);
    await page.getByLabel('Username', { exact: true }).fill(SANNE.username);
    expect(await page.getByRole('checkbox', { name: 'Receptionist' }).first().isChecked()).toBe(true);
    // A one-time password the policy refuses: the core says why, next to the field, and nothing is created.
    await page.getByLabel('One-time password').fill('noor bakker 2024');
    await page.getByRole('button', { name: 'Add user' }).click();
    const fieldError = page.locator('#new-user-password-error');
    await expect.poll(() => fieldError.textContent()).toMatch(/username|name/i);
    expect(await page.getByLabel('One-time password').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByTestId('users-table').locator(`tr[data-username="${SANNE.username}"]`).count()).toBe(0);
    await screenshot(page, 'admin-01-password-refused');

    await page.getByLabel('One-time password').fill(ONE_TIME);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText(`${SANNE.displayName} was added.`).waitFor();
    const row = page.getByTestId('users-table').locator(`tr[data-username="${SANNE.username}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('Receptionist');
    expect(await row.textContent()).toContain('Must set a new password');
    expect(await row.textContent()).toContain('Never');
    await screenshot(page, 'admin-02-users');
    await expectNoAxeViolations(page, 'admin screen');
  });

  it('the receptionist signs in elsewhere and must choose their own password first', async () => {
    second = await openBrowser(desk.stack.url);
    const p = second.page;
    await signInThroughPage(p, SANNE.username, ONE_TIME);
    await p.getByRole('heading', { name: 'Choose your own password' }).waitFor();
    await p.getByLabel('New password', { exact: true }).fill(OWN_PASSWORD);
    await p.getByLabel('The new password again').fill(OWN_PASSWORD);
    await p.getByRole('button', { name: 'Save password' }).click();
    await p.getByRole('heading', { name: 'Choose your own password' }).waitFor({ state: 'detached' });
    await p.getByTestId('conversation-list').or(p.getByText('No conversations yet')).first().waitFor({ timeout: 15_000 });
    await screenshot(p, 'admin-03-receptionist-inbox');

    const row = page.getByTestId('users-table').locator(`tr[data-username="${SANNE.username}"]`);
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).not.toContain('Must set a new password');
    expect(await row.textContent()).not.toContain('Never');
  });

  it('the admin sees that session, ends it, and the receptionist’s window returns to sign-in', async () => {
    const sessions = page.getByTestId('sessions-table');
    const mine = sessions.locator('tr.current');
    await mine.waitFor();
    expect(await mine.textContent()).toContain('this window');
    const hers = sessions.locator(`tr[data-username="${SANNE.username}"]`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await hers.waitFor({ timeout: 15_000 });
    expect(await hers.textContent()).toContain('Active');
    expect(await hers.textContent()).not.toContain('this window');
    await screenshot(page, 'admin-04-sessions');

    await hers.getByRole('button', { name: /End session/ }).click();
    const dialog = page.getByRole('alertdialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(SANNE.displayName);
    await screenshot(page, 'admin-05-end-session-confirm');
    await expectNoAxeViolations(page, 'end-session dialog');
    await dialog.getByRole('button', { name: 'End session' }).click();
    await dialog.waitFor({ state: 'detached' });
    await hers.waitFor({ state: 'detached', timeout: 10_000 });

    const p = second!.page;
    await p.getByTestId('sign-in').waitFor({ timeout: 10_000 });
    await p.getByText('An administrator ended your session').waitFor();
    await screenshot(p, 'admin-06-receptionist-signed-out');
    expect(await second!.cspViolations()).toEqual([]);
    expect(await desk.browser.cspViolations()).toEqual([]);
  });

  it('changes the security settings; a burst of failed sign-ins raises an alert that appears without reload', async () => {
    // Out of range: said at the field, and Save stays off.
    const idle = page.getByLabel('Lock the desk after (minutes without input)');
    await idle.fill('0');
    expect(await idle.getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
    await idle.fill('7');
    await page.getByLabel('Alert when an account or a desk has more failed sign-ins within an hour than').fill('2');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor();
    expect(await desk.admin('security.getSettings', {})).toMatchObject({ idleLockMinutes: 7, failedSignInsAlert: 2 });
    expect(await page.getByTestId('security-alerts').count()).toBe(0);

    // Someone at another desk guesses Noor's password, one time more than the threshold.
    const guesser = desk.stack.core.connect('desk-7');
    for (let i = 0; i < 3; i++) expect(await guesser.dispatch('auth.signIn', { username: SANNE.username, password: `wrong guess number ${i}` })).toMatchObject({ ok: false });
    guesser.close();
    const alerts = page.getByTestId('security-alerts');
    await alerts.getByText('1 security alert needs attention').waitFor({ timeout: 10_000 });
    await alerts.getByRole('button', { name: 'Show alerts' }).click();
    expect(await alerts.textContent()).toContain(`3 failed sign-ins for ${SANNE.displayName}`);
    await screenshot(page, 'admin-07-security-alert');
    await expectNoAxeViolations(page, 'admin screen with an alert');
    await alerts.getByRole('button', { name: 'Acknowledge' }).click();
    await alerts.waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('resets a password: the new one-time password is shown once, with a copy button', async () => {
    const row = page.getByTestId('users-table').locator(`tr[data-username="${SANNE.username}"]`);
    await row.getByRole('button', { name: 'Reset password' }).click();
    const confirm = page.getByRole('alertdialog');
    await confirm.getByRole('button', { name: 'Reset password' }).click();
    const shown = page.getByRole('dialog', { name: `New one-time password for ${SANNE.displayName}` });
    await shown.waitFor();
    const oneTime = (await shown.getByTestId('one-time-password').textContent()) ?? '';
    expect(oneTime.length).toBeGreaterThanOrEqual(15);
    expect(await shown.getByRole('button', { name: 'Copy' }).count()).toBe(1);
    await screenshot(page, 'admin-08-one-time-password');
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'detached' });
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('Must set a new password');
    expect(await page.getByText(oneTime).count()).toBe(0);
  });
});
