/**
 * The admin's settings screen in a real browser against the real core: values the organisation's
 * managed policy set carry the padlock and "Set by your organisation" and cannot be edited, a bad
 * policy key shows in the banner, the status page shows the core's health, and the admin's own
 * update server is saved; an admin sees the policy's problems on every screen, a receptionist does
 * not; the language pickers offer only the policy's languages (one: locked). Run with `node scripts/test.mjs --vitest-only tests/ui/settings.test.ts`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConnection, rpc, TEST_HASH_COST, TEST_PASSWORD } from '../../electron/core/testing/users';
import { IT_ADMIN, openBrowser, openDesk, PHONE_NUMBER_ID, RECEPTIONIST, runAxe, screenshot, startStack, TEMPLATES, type Desk } from './stack';

let desk: Desk;
let page: Page;
let policyDir: string;

beforeAll(async () => {
  policyDir = mkdtempSync(join(tmpdir(), 'clinic-ui-policy-'));
  const policyPath = join(policyDir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ idleLockMinutes: 3, twoFactorRequired: false, updateChannel: 'early', backupFolder: '/srv/backups/clinic', sendGuardMode: 'warn', languages: ['en', 'nl'], colour: 'blue' }));
  desk = await openDesk({ setUp: {}, policyPath, people: [RECEPTIONIST] });
  page = desk.page;
  // What the shell's updater writes in a build that pins no release key (electron/main/updates/updater.ts).
  writeFileSync(join(desk.stack.core.dataDir, 'update-state.json'), JSON.stringify({ phase: 'no_release_key', version: null, checkedAt: Date.now(), problem: 'NO_RELEASE_KEY', installBy: null }));
}, 180_000);

afterAll(async () => {
  await desk?.close();
  rmSync(policyDir, { recursive: true, force: true });
});

describe("the admin's settings screen", () => {
  it('shows an admin the policy’s problems at the top of every screen, with the way to the details', async () => {
    await desk.signInAs(IT_ADMIN);
    await page.getByTestId('desk').waitFor();
    // The language picker offers the policy's two languages only.
    expect(await page.locator('#lang option').allTextContents()).toEqual(['English', 'Nederlands']);
    const banner = page.getByTestId('policy-banner');
    expect(await banner.textContent()).toContain('Your organisation’s managed policy has a problem; that setting was ignored.');
    await page.getByRole('navigation').getByRole('button', { name: 'Backups' }).click();
    await page.getByTestId('backup-screen').waitFor();
    expect(await banner.isVisible()).toBe(true);
    await screenshot(page, 'policy-banner-backups');
    await banner.getByRole('button', { name: 'Show details' }).click();
    await page.getByTestId('settings-screen').waitFor();
    // On Settings the details take its place.
    expect(await banner.count()).toBe(0);
    expect(await page.getByTestId('policy-problems').textContent()).toContain('colour');
  });

  it('shows policy-set values with the padlock, and leaves the rest editable', async () => {
    await page.getByRole('navigation').getByRole('button', { name: 'Settings' }).click();
    const screen = page.getByTestId('settings-screen');
    await screen.waitFor();

    const idle = page.getByTestId('setting-idleLockMinutes');
    expect(await idle.textContent()).toContain('3 min');
    expect(await idle.getByTestId('policy-lock').textContent()).toBe('Set by your organisation');
    expect(await page.getByTestId('setting-backupFolder').getByTestId('policy-lock').count()).toBe(1);
    expect(await page.getByTestId('setting-languages').textContent()).toContain('English, Nederlands');
    // Not set by the policy: no padlock.
    expect(await page.getByTestId('setting-allowedRelayUrl').getByTestId('policy-lock').count()).toBe(0);
    expect(await page.getByTestId('setting-retentionMinimumDays').getByTestId('policy-lock').count()).toBe(0);

    // The channel is the organisation's; the update server is the admin's.
    expect(await page.getByLabel('Channel').isDisabled()).toBe(true);
    expect(await page.getByLabel('Channel').inputValue()).toBe('early');
    expect(await page.getByLabel('Update server').isDisabled()).toBe(false);

    // The bad key is named in the banner.
    const banner = page.getByTestId('policy-problems');
    expect(await banner.textContent()).toContain('colour');

    // The status page reads the real core.
    const health = page.getByTestId('health');
    await expect.poll(() => health.textContent()).toContain('Connected');
    expect(await health.textContent()).toMatch(/Keychain/);
    // A build without a pinned release key says so rather than failing silently.
    expect(await health.textContent()).toContain('UpdatesUpdates off: no release key pinned in this build');

    const violations = await runAxe(page);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
    await screenshot(page, 'settings-policy');
    await page.locator('#section-security').evaluate((el) => el.scrollIntoView());
    await screenshot(page, 'settings-policy-locks');
  });

  it('saves the admin’s own update server next to the organisation’s channel', async () => {
    await page.getByLabel('Update server').fill('https://updates.praktijk.example/clinic-inbox/');
    await page.locator('#section-updates').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    expect((await desk.admin('settings.overview', {})) as { updates: { url: string } }).toMatchObject({ updates: { url: 'https://updates.praktijk.example/clinic-inbox/', channel: 'early' } });
  });
});

describe('the relay and WhatsApp in Settings', () => {
  it('shows the link, the number and the app secret, syncs templates and pairs again through the wizard', async () => {
    expect(await page.getByTestId('settings-relay').textContent()).toContain('Relay linkConnected');
    const whatsapp = page.getByTestId('settings-whatsapp');
    expect(await whatsapp.textContent()).toContain(`Phone number ID${PHONE_NUMBER_ID}`);
    expect(await whatsapp.textContent()).toContain('Meta app secretNot set');
    await page.getByRole('button', { name: 'Sync templates' }).click();
    await page.getByText(`${TEMPLATES.filter((t) => t.status === 'APPROVED').length} approved templates`).waitFor();
    await page.locator('#section-whatsapp').evaluate((el) => el.scrollIntoView());
    await screenshot(page, 'settings-relay-whatsapp');
    await page.getByRole('button', { name: 'Pair again' }).click();
    const wizard = page.getByTestId('setup-wizard');
    await wizard.waitFor();
    expect(await wizard.getByLabel('Relay address').count()).toBe(1);
    await wizard.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('settings-screen').waitFor();
  });
});

describe('the policy’s languages', () => {
  it('are the only ones a receptionist is offered, and a receptionist sees no policy banner', async () => {
    await desk.switchTo(RECEPTIONIST);
    await page.getByTestId('desk').waitFor();
    expect(await page.locator('#lang option').allTextContents()).toEqual(['English', 'Nederlands']);
    await page.locator('#lang').selectOption('nl');
    expect(await page.locator('html').getAttribute('lang')).toBe('nl');
    expect(await page.getByTestId('policy-banner').count()).toBe(0);
    await page.locator('#lang').selectOption('en');
  });

  it('one language: every picker shows it locked, and a saved language it does not allow gives way to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-ui-one-language-'));
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ languages: ['de'] }));
    const stack = await startStack({ rendererDir: desk.rendererDir, passwordHashCost: TEST_HASH_COST, policyPath: join(dir, 'policy.json') });
    const browser = await openBrowser(stack.url);
    try {
      const p = browser.page;
      await adminConnection(stack.core);
      // This desk last used Dutch, which the policy no longer allows.
      await p.evaluate("localStorage.setItem('clinic-inbox.language', 'nl')");
      await p.reload();
      const signIn = p.getByTestId('sign-in');
      await signIn.waitFor();
      expect(await signIn.getByRole('heading', { level: 1 }).textContent()).toBe('Bei Clinic Inbox anmelden');
      expect(await signIn.getByTestId('language-locked').textContent()).toBe('Sprache: DeutschVon Ihrer Organisation festgelegt');
      expect(await p.locator('select#signin-lang').count()).toBe(0);
      await screenshot(p, 'language-locked-sign-in');
      // The first run's language switch (the relay step an admin lands on) is locked the same way.
      await signIn.getByLabel('Benutzername').fill(IT_ADMIN.username);
      await signIn.getByLabel('Passwort', { exact: true }).fill(TEST_PASSWORD);
      await signIn.getByRole('button', { name: 'Anmelden', exact: true }).click();
      const wizard = p.getByTestId('setup-wizard');
      await wizard.waitFor();
      expect(await wizard.getByTestId('language-locked').textContent()).toContain('Deutsch');
      expect(await p.locator('select#setup-lang').count()).toBe(0);
      // The saved choice is kept (it returns if the policy allows it again), not shown.
      expect(await p.evaluate("localStorage.getItem('clinic-inbox.language')")).toBe('nl');
      const violations = await runAxe(p);
      expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
      await screenshot(p, 'language-locked-wizard');
      expect(await rpc(await adminConnection(stack.core), 'settings.languages')).toEqual({ allowed: ['de'] });
    } finally {
      await browser.close();
      await stack.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
