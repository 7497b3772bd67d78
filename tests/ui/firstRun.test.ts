/**
 * The IT admin's first run in Chromium through the web harness (real core, relay and Graph API
 * simulator): each wizard error is shown next to its field with the fix and read by screen readers,
 * the wizard says what this computer is now connected to, a reload on the recovery-key step returns
 * to it with a new key, and every screen has a language switch. Screenshots go to
 * test-results/screenshots/.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IT_ADMIN, openDesk, runAxe, screenshot, WABA_ID, type Desk } from './stack';

let desk: Desk;
let page: Page;
const FOREIGN_WABA = '330000000000001';
const UNKNOWN_WABA = '990000000000009';
const NEW_TOKEN = `EAAGrenewed${'x'.repeat(30)}`;

beforeAll(async () => {
  desk = await openDesk();
  page = desk.page;
  await desk.signInAs(IT_ADMIN);
  await page.getByText('Step 2 of 4 — Relay').waitFor({ timeout: 15_000 });
}, 180_000);

afterAll(() => desk?.close());

async function expectAxeClean(screen: string): Promise<void> {
  const violations = await runAxe(page);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

/** The field's error: its text, and that the field points screen readers at it. */
async function fieldError(inputId: string, errorId: string): Promise<string> {
  const error = page.locator(`#${errorId}`);
  await error.waitFor({ timeout: 15_000 });
  const input = page.locator(`#${inputId}`);
  expect(await input.getAttribute('aria-invalid')).toBe('true');
  expect((await input.getAttribute('aria-describedby'))?.split(' ')).toContain(errorId);
  expect(await error.getAttribute('role')).toBe('alert');
  return (await error.textContent()) ?? '';
}

async function saveWhatsApp(wabaId: string, token: string): Promise<void> {
  await page.getByLabel('WhatsApp Business account ID').fill(wabaId);
  await page.getByLabel('Access token').fill(token);
  const graph = page.getByLabel('Graph API address (testing only)');
  if (!(await graph.isVisible())) await page.getByText('Advanced').click();
  await graph.fill(desk.stack.sim.url);
  await page.getByRole('button', { name: 'Save and continue' }).click();
}

describe("the IT admin's first run", () => {
  it('has a language switch on the wizard', async () => {
    const language = page.locator('#setup-lang');
    await language.selectOption('nl');
    await page.getByRole('heading', { name: 'Clinic Inbox instellen' }).waitFor();
    await language.selectOption('en');
    await page.getByRole('heading', { name: 'Set up Clinic Inbox' }).waitFor();
  });

  it('refuses an http:// relay address next to the field, saying https is required, and pairs with nothing', async () => {
    await page.getByLabel('Relay address').fill('http://relay.example.eu');
    await page.getByLabel('Enrolment code').fill(await desk.stack.enrolmentCode());
    await page.getByRole('button', { name: 'Connect to relay' }).click();
    expect(await fieldError('relay-url', 'relay-url-error')).toBe('The relay address must start with https:// — plain http:// is not encrypted.');
    expect(await desk.admin('relay.status', {})).toMatchObject({ state: 'not_paired' });
    await screenshot(page, 'first-run-01-relay-https');
    await expectAxeClean('relay address error');

    await page.getByLabel('Relay address').fill(desk.stack.relay.url);
    await page.getByLabel('Enrolment code').fill(await desk.stack.enrolmentCode());
    await page.getByRole('button', { name: 'Connect to relay' }).click();
    await page.getByText('Step 3 of 4 — WhatsApp').waitFor({ timeout: 15_000 });
  });

  it('says an unknown account id is unknown, next to the account id', async () => {
    await saveWhatsApp(UNKNOWN_WABA, desk.stack.accessToken);
    expect(await fieldError('waba-id', 'waba-id-error')).toMatch(/^Meta knows no WhatsApp Business Account with this id/);
    expect(await page.locator('#access-token-error').count()).toBe(0);
    await screenshot(page, 'first-run-02-account-unknown');
    await expectAxeClean('unknown account');
  });

  it('says a token Meta refuses for this account is not valid for it (not "expired"), next to the token', async () => {
    desk.stack.sim.addForeignWaba(FOREIGN_WABA);
    await saveWhatsApp(FOREIGN_WABA, desk.stack.accessToken);
    const text = await fieldError('access-token', 'access-token-error');
    expect(text).toMatch(/^This access token is not valid for this WhatsApp Business Account/);
    expect(text).not.toMatch(/expired/i);
    expect(await page.locator('#waba-id-error').count()).toBe(0);
    await screenshot(page, 'first-run-03-token-not-for-account');
    await expectAxeClean('token not for this account');
  });

  it('says an expired token has expired, next to the token', async () => {
    desk.stack.sim.rotateToken(NEW_TOKEN);
    await saveWhatsApp(WABA_ID, desk.stack.accessToken);
    expect(await fieldError('access-token', 'access-token-error')).toMatch(/^This access token has expired/);
    expect(await desk.admin('whatsapp.status', {})).toMatchObject({ configured: false });
  });

  it('shows what this computer is now connected to: clinic, relay, account, number, name and quality', async () => {
    await saveWhatsApp(WABA_ID, NEW_TOKEN);
    await page.getByText('Step 4 of 4 — Recovery key').waitFor({ timeout: 15_000 });
    const summary = page.getByTestId('connected-summary');
    await summary.locator('dl').waitFor();
    const text = (await summary.textContent()) ?? '';
    for (const part of ['clinic-demo', desk.stack.relay.url, WABA_ID, '+31 20 123 4567', 'Test clinic', 'High (green)']) expect(text).toContain(part);
    await screenshot(page, 'first-run-04-connected');
    await expectAxeClean('connected summary');
  });

  it('returns to the recovery-key step after a reload, with a new key in place of the one never confirmed', async () => {
    await page.getByRole('button', { name: 'Create the recovery key' }).click();
    const first = (await page.getByTestId('recovery-key').textContent()) ?? '';
    expect(first).toMatch(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);

    await page.reload();
    await desk.signInAs(IT_ADMIN);
    await page.getByText('Step 4 of 4 — Recovery key').waitFor({ timeout: 15_000 });
    await page.getByText('The recovery key shown earlier was never confirmed').waitFor();
    await screenshot(page, 'first-run-05-recovery-after-reload');
    await expectAxeClean('recovery key after reload');
    await page.getByRole('button', { name: 'Create the recovery key' }).click();
    const second = (await page.getByTestId('recovery-key').textContent()) ?? '';
    expect(second).toMatch(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);
    expect(second).not.toBe(first);
    await page.getByLabel('I have printed or written down the recovery key and stored it safely.').check();
    await page.getByRole('button', { name: 'Finish' }).click();
    await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 15_000 });

    // Confirmed: a reload now opens the admin's screen, not the wizard.
    await page.reload();
    await desk.signInAs(IT_ADMIN);
    await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('setup-wizard').count()).toBe(0);
  });
});
