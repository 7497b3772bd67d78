/**
 * The admin's settings screen in a real browser against the real core: values the organisation's
 * managed policy set carry the padlock and "Set by your organisation" and cannot be edited, a bad
 * policy key shows in the banner, the status page shows the core's health, and the admin's own
 * update server is saved. Run with `node scripts/test.mjs --vitest-only tests/ui/settings.test.ts`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IT_ADMIN, openDesk, runAxe, screenshot, type Desk } from './stack';

let desk: Desk;
let page: Page;
let policyDir: string;

beforeAll(async () => {
  policyDir = mkdtempSync(join(tmpdir(), 'clinic-ui-policy-'));
  const policyPath = join(policyDir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ idleLockMinutes: 3, twoFactorRequired: false, updateChannel: 'early', backupFolder: '/srv/backups/clinic', sendGuardMode: 'warn', languages: ['nl', 'en'], colour: 'blue' }));
  desk = await openDesk({ setUp: {}, policyPath });
  page = desk.page;
}, 180_000);

afterAll(async () => {
  await desk?.close();
  rmSync(policyDir, { recursive: true, force: true });
});

describe("the admin's settings screen", () => {
  it('shows policy-set values with the padlock, and leaves the rest editable', async () => {
    await desk.signInAs(IT_ADMIN);
    await page.getByRole('navigation').getByRole('button', { name: 'Settings' }).click();
    const screen = page.getByTestId('settings-screen');
    await screen.waitFor();

    const idle = page.getByTestId('setting-idleLockMinutes');
    expect(await idle.textContent()).toContain('3 min');
    expect(await idle.getByTestId('policy-lock').textContent()).toBe('Set by your organisation');
    expect(await page.getByTestId('setting-backupFolder').getByTestId('policy-lock').count()).toBe(1);
    expect(await page.getByTestId('setting-languages').textContent()).toContain('Nederlands, English');
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
