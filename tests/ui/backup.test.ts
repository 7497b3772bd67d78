/**
 * Backups in a real browser against the real core and relay: the admin chooses the folder and runs
 * "Back up now" (progress bar, then the backup in the list, verified), and on a new computer (a
 * fresh data folder and an empty keychain) the first-run screen restores it with the recovery key,
 * after which the receptionist finds the patient's conversation. Run with
 * `node scripts/test.mjs --vitest-only tests/ui/backup.test.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keychainAccounts } from '../../electron/core/keys/accounts';
import { createKeytarSecretStore, type SecretStore } from '../../electron/core/keys/secretStore';
import { startCore } from '../../electron/core/startCore';
import { createWebHarness, type WebHarness } from '../../electron/core/testing/webHarness';
import type { Core } from '../../electron/core/types';
import { IT_ADMIN, openBrowser, openDesk, RECEPTIONIST, runAxe, screenshot, TEST_PASSWORD, WABA_ID, type Browser, type Desk } from './stack';
import { adminConnection, rpc, TEST_HASH_COST } from '../../electron/core/testing/users';

const PATIENT = { from: '31612345678', name: 'Lotte Smit', text: 'Kan ik morgen om tien uur langskomen?' };

let desk: Desk;
let folder: string;
let recoveryKey: string;
let installationId: string;
let fresh: { core: Core; harness: WebHarness; browser: Browser; dataDir: string; secrets: SecretStore } | null = null;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST] });
  // A key the test knows (the desk's own was not kept), stored by the IT admin as the wizard asks.
  const created = (await desk.admin('recovery.create', { replace: true })) as { recoveryKey: string; createdAt: number };
  recoveryKey = created.recoveryKey;
  await desk.admin('recovery.confirm', { createdAt: created.createdAt });
  installationId = desk.stack.core.installationId;
  folder = mkdtempSync(join(tmpdir(), 'clinic-backups-'));
  await desk.stack.sim.postInbound(PATIENT);
  for (let i = 0; i < 100 && !(await receptionistSees()); i += 1) await new Promise((r) => setTimeout(r, 200));
}, 180_000);

const ERASED = { from: '31687654321', name: 'Bram Jansen', text: 'Wilt u al mijn gegevens verwijderen?' };
const LATER = { from: '31611112222', name: 'Fenna de Vries', text: 'Is de praktijk vrijdag open?' };

async function conversations(): Promise<{ contact: { id: number; waId: string | null } }[]> {
  return rpc(await desk.as(RECEPTIONIST), 'inbox.listConversations', {}).then((r) => r.items as { contact: { id: number; waId: string | null } }[]);
}
/** The patients with a conversation, by their WhatsApp number. */
const numbers = async () => (await conversations()).map((c) => c.contact.waId ?? '').sort();

/** Restore on a row of the backup list, confirm, and read what the result says about erasures. */
async function restoreFromList(page: Page, row: Locator, checkConfirm?: (text: string | null) => void): Promise<string | null> {
  await row.getByRole('button', { name: /^Restore the backup of / }).click();
  const confirm = page.getByRole('alertdialog');
  checkConfirm?.(await confirm.textContent());
  await confirm.getByRole('button', { name: 'Restore', exact: true }).click();
  const result = page.getByTestId('erasures-reapplied');
  await result.waitFor({ timeout: 90_000 });
  return result.textContent();
}

async function receptionistSees(): Promise<boolean> {
  const connection = await desk.as(RECEPTIONIST);
  const result = await connection.dispatch('inbox.listConversations', {});
  return result.ok && (result.value as { items: unknown[] }).items.length === 1;
}

afterAll(async () => {
  await fresh?.browser.close();
  await fresh?.harness.close().catch(() => undefined);
  await fresh?.core.close().catch(() => undefined);
  if (fresh) for (const account of Object.values(keychainAccounts(installationId))) await fresh.secrets.delete(account).catch(() => false);
  if (fresh) rmSync(fresh.dataDir, { recursive: true, force: true });
  await desk?.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('backups', () => {
  let backupFile = '';

  it('the admin chooses the folder, backs up now with a progress bar, and sees the backup in the list, verified', async () => {
    const { page } = desk;
    await desk.signInAs(IT_ADMIN);
    await page.getByRole('navigation').getByRole('button', { name: 'Backups' }).click();
    const screen = page.getByTestId('backup-screen');
    await screen.waitFor();
    expect(await screen.getByRole('button', { name: 'Back up now' }).isDisabled()).toBe(true);
    await screen.getByLabel('Backup folder').fill(folder);
    await screen.getByRole('button', { name: 'Save settings' }).click();
    await screen.getByText('Settings saved.').waitFor();
    await screenshot(page, 'backup-01-settings');

    await screen.getByRole('button', { name: 'Back up now' }).click();
    await screen.getByRole('progressbar', { name: 'Backup progress' }).waitFor();
    await screen.getByText('Backup written and verified.').waitFor({ timeout: 60_000 });
    const list = screen.getByTestId('backup-list');
    await list.waitFor();
    const rows = list.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('Header authenticated');
    // One message, one contact, in the list row's counts.
    expect(await rows.first().locator('td').nth(0).textContent()).toBe('1');
    expect(await rows.first().locator('td').nth(1).textContent()).toBe('1');
    await rows.first().getByRole('button', { name: /^Verify the backup of / }).click();
    await rows.first().getByText('Verified: opens, intact, content matches').waitFor({ timeout: 60_000 });
    expect(await screen.getByTestId('backup-last-good').textContent()).not.toBe('None yet');
    await screenshot(page, 'backup-02-list');
    const violations = await runAxe(page);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);

    // The restore confirmation names the date and the counts; cancelling changes nothing.
    await rows.first().getByRole('button', { name: /^Restore the backup of / }).click();
    const confirm = page.getByRole('alertdialog');
    await confirm.waitFor();
    expect(await confirm.textContent()).toMatch(/Restore the backup of .+\?.*1 message, 1 contact\./);
    await screenshot(page, 'backup-03-confirm-restore');
    await confirm.getByRole('button', { name: 'Cancel' }).click();

    const entries = (await desk.admin('backup.list', {})) as { file: string }[];
    backupFile = entries[0]!.file;
  }, 120_000);

  it('on the same computer, the admin restores an earlier backup from the list: the desk comes back with its content, a later message gone, the erasure since then applied again', async () => {
    const { page } = desk;
    await desk.stack.sim.postInbound(ERASED);
    await expect.poll(() => numbers(), { timeout: 20_000 }).toEqual([ERASED.from, PATIENT.from].sort());
    const earlier = (await desk.admin('backup.runNow', {})) as { file: string; createdAt: number };
    // After that backup: a new patient writes, and the other is erased (which makes a backup of its own).
    await desk.stack.sim.postInbound(LATER);
    await expect.poll(() => numbers(), { timeout: 20_000 }).toEqual([ERASED.from, LATER.from, PATIENT.from].sort());
    const erased = (await conversations()).find((c) => c.contact.waId === ERASED.from)!;
    await desk.admin('privacy.eraseContact', { contactId: erased.contact.id, reason: 'Patient asked for erasure (art. 17)' });
    await expect.poll(async () => ((await desk.admin('backup.list', {})) as unknown[]).length, { timeout: 60_000 }).toBe(3);
    await expect.poll(async () => ((await desk.admin('backup.status', {})) as { running: boolean }).running, { timeout: 60_000 }).toBe(false);
    const entries = (await desk.admin('backup.list', {})) as { file: string }[];
    expect(entries[1]!.file).toBe(earlier.file);

    // The admin's page: the restore list, newest first; the earlier backup is the second row.
    await page.getByRole('navigation').getByRole('button', { name: 'Backups' }).click();
    const rows = page.getByTestId('backup-list').locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(3);
    const restored = await restoreFromList(page, rows.nth(1), (confirm) => expect(confirm).toMatch(/2 messages, 2 contacts\./));
    expect(restored).toBe('1 patient erased after this backup was erased again.');
    await screenshot(page, 'backup-07-restored-here');
    await page.getByRole('button', { name: 'Continue to sign in' }).click();

    // The desk is back on the restored database: the conversation from before the backup is there,
    // the later patient's message is gone, and the erased patient stays erased.
    await desk.signInAs(RECEPTIONIST);
    await page.getByText(PATIENT.name).first().waitFor({ timeout: 20_000 });
    await page.getByText(PATIENT.name).first().click();
    await page.getByText(PATIENT.text).first().waitFor({ timeout: 20_000 });
    expect(await page.getByText(LATER.name).count()).toBe(0);
    expect(await page.getByText(ERASED.name).count()).toBe(0);
    expect(await numbers()).toEqual([PATIENT.from]);
    await screenshot(page, 'backup-07b-desk-after-restore');
  }, 240_000);

  it('a new computer restores it from the first-run screen with the recovery key, and the receptionist finds the conversation', async () => {
    // The old computer is gone (its core would hold the same relay identity).
    await desk.stack.harness.close();
    await desk.stack.core.close();
    const dataDir = mkdtempSync(join(tmpdir(), 'clinic-new-pc-'));
    const secrets = await createKeytarSecretStore({ service: `clinic-inbox-ui-restore-${process.pid}` });
    const logger = pino({ level: 'silent' });
    const core = await startCore({ dataDir, secrets, logger, graph: { baseUrl: desk.stack.sim.url }, passwordHashCost: TEST_HASH_COST, policyPath: null });
    const harness = createWebHarness({ core, rendererDir: desk.rendererDir, logger });
    const browser = await openBrowser(await harness.listen(0));
    fresh = { core, harness, browser, dataDir, secrets };
    const { page } = browser;

    await page.getByTestId('setup-wizard').waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Restore from a backup' }).click();
    const form = page.getByTestId('first-run-restore');
    await form.getByLabel('Backup file').fill(backupFile);
    // A wrong key first: refused, and the screen says so.
    await form.getByLabel('Recovery key').fill('AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH');
    await form.getByRole('button', { name: 'Restore', exact: true }).click();
    await form.getByRole('alert').waitFor({ timeout: 30_000 });
    await screenshot(page, 'backup-04-first-run-wrong-key');
    await form.getByLabel('Recovery key').fill(recoveryKey);
    await form.getByRole('button', { name: 'Restore', exact: true }).click();
    const done = page.getByTestId('restored-from-backup');
    await done.waitFor({ timeout: 60_000 });
    expect(await done.textContent()).toContain('enter the WhatsApp access token again');
    const violations = await runAxe(page);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
    await screenshot(page, 'backup-05-restored');
    await done.getByRole('button', { name: 'Continue to sign in' }).click();

    const signIn = page.getByTestId('sign-in');
    await signIn.waitFor({ timeout: 20_000 });
    await signIn.getByLabel('Username').fill(RECEPTIONIST.username);
    await signIn.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await signIn.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText(PATIENT.name).first().waitFor({ timeout: 20_000 });
    await page.getByText(PATIENT.name).first().click();
    await page.getByText(PATIENT.text).first().waitFor({ timeout: 20_000 });
    await screenshot(page, 'backup-06-receptionist-after-restore');
  }, 180_000);

  it('on the same computer, the admin restores a backup from the list: the result says what was erased again, and the window returns to sign-in', async () => {
    const { page } = fresh!.browser;
    // The one thing entered again on the new computer: the WhatsApp token (here by the IT admin's
    // own connection; the wizard's WhatsApp step has its own tests).
    await rpc(await adminConnection(fresh!.core), 'setup.whatsapp', { wabaId: WABA_ID, accessToken: desk.stack.accessToken, graphBaseUrl: desk.stack.sim.url });
    // The restored clinic kept its settings: the same folder, the same backup in the list.
    await page.getByRole('button', { name: 'Lock', exact: true }).click();
    await page.getByTestId('lock-screen').getByRole('button', { name: 'Switch user' }).click();
    const signIn = page.getByTestId('sign-in');
    await signIn.waitFor({ timeout: 20_000 });
    await signIn.getByLabel('Username').fill(IT_ADMIN.username);
    await signIn.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await signIn.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('navigation').getByRole('button', { name: 'Backups' }).click({ timeout: 30_000 });
    const rows = page.getByTestId('backup-list').locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await restoreFromList(page, rows.last())).toBe('No erasures had to be applied again.');
    await screenshot(page, 'backup-08-restored-same-computer');
    await page.getByRole('button', { name: 'Continue to sign in' }).click();
    await page.getByTestId('sign-in').waitFor({ timeout: 20_000 });
  }, 120_000);
});
