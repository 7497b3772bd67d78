/**
 * Sign-in, the shared desk's lock and the user's own account, in a real browser against the real
 * core, relay and Graph API simulator: a receptionist signs in, the desk locks itself after the
 * idle time (Playwright's clock moves time on; the app's own idle timer decides) with nothing of
 * the patient on screen, and the PIN opens it again with the typed reply intact; an admin ending
 * the session sends the window to sign-in at once, saying why; and an installation whose data
 * predates accounts opens on "Create the administrator" with its conversations kept.
 * Run with `node scripts/test.mjs --vitest-only tests/ui`.
 */
import pino from 'pino';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCoreStore } from '../../electron/core/db/coreStore';
import { createKeytarSecretStore } from '../../electron/core/keys/secretStore';
import { startCore } from '../../electron/core/startCore';
import { rpc, TEST_HASH_COST } from '../../electron/core/testing/users';
import { createWebHarness } from '../../electron/core/testing/webHarness';
import type { Core } from '../../electron/core/types';
import type { SessionInfo } from '../../shared/rpc';
import { openDesk, RECEPTIONIST, runAxe, screenshot, TEST_PASSWORD, type Desk } from './stack';

const PATIENT = 'Lotte Vermeer';
const PATIENT_TEXT = 'Goedemiddag, is de uitslag van mijn bloedonderzoek al binnen?';
const DRAFT = 'Goedemiddag Lotte, de uitslag is binnen. De dokter belt u';
const PIN = '2468';
const OLD_PATIENT = 'Henk Smit';
const OLD_TEXT = 'Mag ik volgende week een herhaalrecept ophalen?';

let desk: Desk;
let page: Page;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST], clock: true });
  page = desk.page;
}, 120_000);

afterAll(() => desk?.close());

async function expectNoAxeViolations(screen: string): Promise<void> {
  const violations = await runAxe(page);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

/** Every match of the text on the page is hidden (none, or none visible). */
async function nothingVisible(text: string): Promise<boolean> {
  for (const match of await page.getByText(text).all()) if (await match.isVisible()) return false;
  return true;
}

describe('sign-in and the shared desk', () => {
  it('a receptionist signs in; the idle desk locks with nothing readable, and the PIN brings back the open conversation and the draft', async () => {
    // The clinic's policy: lock after one minute without input.
    await desk.admin('security.updateSettings', { idleLockMinutes: 1 });
    await desk.stack.sim.postInbound({ from: '31611223344', name: PATIENT, text: PATIENT_TEXT });

    const signIn = page.getByTestId('sign-in');
    await signIn.waitFor();
    await screenshot(page, 'accounts-01-sign-in');
    await expectNoAxeViolations('sign-in');
    // A wrong password says so and lets nobody in.
    await signIn.getByLabel('Username').fill(RECEPTIONIST.username);
    await signIn.getByLabel('Password', { exact: true }).fill('not the password at all');
    await signIn.getByRole('button', { name: 'Sign in', exact: true }).click();
    await signIn.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await desk.signInAs(RECEPTIONIST);

    const conversation = page.locator('.conv-item', { hasText: PATIENT });
    await conversation.click();
    await page.getByTestId('thread').getByText(PATIENT_TEXT).waitFor();

    // My account: a desk PIN, confirmed with the password.
    await page.getByRole('button', { name: `My account: ${RECEPTIONIST.displayName}` }).click();
    const account = page.getByTestId('my-account');
    await account.waitFor();
    await screenshot(page, 'accounts-02-my-account');
    await expectNoAxeViolations('my account');
    await account.getByLabel('New PIN (4 to 8 digits)').fill(PIN);
    await account.getByLabel('Your password, to confirm').first().fill(TEST_PASSWORD);
    await account.getByRole('button', { name: 'Save PIN' }).click();
    await account.getByText('PIN saved.').waitFor();
    await account.getByText('A PIN is set.').waitFor();
    await account.getByRole('button', { name: 'Close', exact: true }).click();
    await account.waitFor({ state: 'detached' });

    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill(DRAFT);

    // A minute and a bit without input: the app's idle timer locks the desk.
    await page.clock.fastForward('01:05');
    const lock = page.getByTestId('lock-screen');
    await lock.waitFor({ timeout: 5_000 });
    await expect.poll(async () => (await desk.admin('sessions.list', {}) as SessionInfo[]).find((s) => s.username === RECEPTIONIST.username && s.origin.startsWith('web-harness'))?.state).toBe('locked');
    // Nothing of the patient is readable: the desk behind the lock is not rendered visible at all.
    expect(await nothingVisible(PATIENT)).toBe(true);
    expect(await nothingVisible(PATIENT_TEXT)).toBe(true);
    expect(await page.evaluate<string>("getComputedStyle(document.querySelector('[data-testid=desk]')).visibility")).toBe('hidden');
    expect(await page.getByTestId('desk').getAttribute('inert')).not.toBeNull();
    await screenshot(page, 'accounts-03-locked');
    await expectNoAxeViolations('lock screen');

    // A wrong PIN says how many tries are left; the right one opens the desk as it was.
    await lock.getByLabel('PIN').fill('1357');
    await lock.getByRole('button', { name: 'Unlock', exact: true }).click();
    await lock.getByRole('alert').filter({ hasText: /Wrong PIN\. \d more tr(y|ies), then your password is needed\./ }).waitFor();
    await lock.getByLabel('PIN').fill(PIN);
    await lock.getByRole('button', { name: 'Unlock', exact: true }).click();
    await lock.waitFor({ state: 'detached' });
    expect(await composer.inputValue()).toBe(DRAFT);
    expect(await page.getByTestId('thread').getByText(PATIENT_TEXT).isVisible()).toBe(true);
    expect(await desk.browser.cspViolations()).toEqual([]);
  });

  it('an admin ending the session sends the window to sign-in at once, saying why', async () => {
    const sessions = (await desk.admin('sessions.list', {})) as SessionInfo[];
    const mine = sessions.find((s) => s.username === RECEPTIONIST.username && s.origin.startsWith('web-harness'));
    expect(mine).toBeDefined();
    const started = Date.now();
    await desk.admin('sessions.revoke', { sessionId: mine!.id });
    const signIn = page.getByTestId('sign-in');
    await signIn.waitFor({ timeout: 5_000 });
    const elapsed = Date.now() - started;
    expect(elapsed, `the window took ${elapsed} ms to leave the desk`).toBeLessThan(2_000);
    expect(await page.getByTestId('session-ended').textContent()).toBe('An administrator ended your session. Sign in again to continue.');
    expect(await page.getByText(PATIENT).count()).toBe(0);
    // The desk remembers who worked here: one click fills the username.
    await signIn.getByRole('button', { name: `${RECEPTIONIST.displayName} (${RECEPTIONIST.username})` }).click();
    expect(await signIn.getByLabel('Username').inputValue()).toBe(RECEPTIONIST.username);
    await screenshot(page, 'accounts-04-session-ended');
    await expectNoAxeViolations('sign-in after the session ended');
  });

  it('an installation from before accounts opens on "Create the administrator", and its conversations stay', async () => {
    const { stack } = desk;
    const { dataDir } = stack.core;
    // A conversation the earlier version held (and this one must keep).
    const receptionist = await desk.as(RECEPTIONIST);
    await stack.sim.postInbound({ from: '31655667788', name: OLD_PATIENT, text: OLD_TEXT });
    await expect
      .poll(async () => (await rpc(receptionist, 'inbox.listConversations', { filter: 'all', limit: 50 })).items.length, { timeout: 10_000 })
      .toBeGreaterThan(0);
    await stack.harness.close();
    await stack.core.close();
    // What migration 40 leaves of an earlier version's database: the conversations, no users.
    const secrets = await createKeytarSecretStore();
    const store = await openCoreStore({ dataDir, secrets, logger: pino({ level: 'silent' }) });
    store.db.exec('DELETE FROM recovery_codes; DELETE FROM break_glass; DELETE FROM sessions; DELETE FROM desk_failures; DELETE FROM users;');
    store.close();

    const core: Core = await startCore({ dataDir, logger: pino({ level: 'silent' }), graph: { baseUrl: stack.sim.url }, passwordHashCost: TEST_HASH_COST });
    const harness = createWebHarness({ core, rendererDir: desk.rendererDir, logger: pino({ level: 'silent' }) });
    try {
      await page.goto(await harness.listen(0));
      await page.getByRole('heading', { name: 'Create the administrator' }).waitFor();
      await page.getByLabel('Your name').fill('Bram Beheer');
      await page.getByLabel('Username').fill('bram');
      await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Create and continue' }).click();
      // Pairing, WhatsApp and the recovery key came along with the data: no more wizard steps.
      await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 10_000 });

      // The admin gives a receptionist a one-time password; she chooses her own at first sign-in.
      const admin = core.connect('test');
      await rpc(admin, 'auth.signIn', { username: 'bram', password: TEST_PASSWORD });
      const oneTime = 'temporary harbor gravel 7';
      await rpc(admin, 'users.create', { username: 'noor', displayName: 'Noor Bakker', roles: ['receptionist'], password: oneTime });
      await page.getByRole('button', { name: 'Lock', exact: true }).click();
      await page.getByTestId('lock-screen').getByRole('button', { name: 'Switch user' }).click();
      await desk.signInAs({ username: 'noor', displayName: 'Noor Bakker', roles: ['receptionist'] }, oneTime);
      await page.getByRole('heading', { name: 'Choose your own password' }).waitFor();
      await screenshot(page, 'accounts-05-choose-password');
      await expectNoAxeViolations('choose your own password');
      await page.getByLabel('New password', { exact: true }).fill('lighthouse copper meadow 93');
      await page.getByLabel('The new password again').fill('lighthouse copper meadow 93');
      await page.getByRole('button', { name: 'Save password' }).click();
      await page.getByTestId('choose-password').waitFor({ state: 'detached' });

      await page.locator('.conv-item', { hasText: OLD_PATIENT }).waitFor({ timeout: 10_000 });
      await page.locator('.conv-item', { hasText: OLD_PATIENT }).click();
      await page.getByTestId('thread').getByText(OLD_TEXT).waitFor();
      await screenshot(page, 'accounts-06-earlier-install-inbox');
      admin.close();
    } finally {
      await harness.close();
      await core.close();
    }
  });
});
