/**
 * Privacy at the desk, in Chromium: the send guard warns about an IBAN and an e-mail address with
 * each one highlighted and sends on "Send anyway"; in block mode (set by an admin) it refuses and
 * says why; the template picker does the same for what is typed into a template's variables, and
 * refuses any template to a patient who opted out, saying why; a patient who writes STOP shows as opted out in the contact panel, which says why no
 * templates go to them; an admin who is also a receptionist sees the legal hold and the export
 * there, and the open requests and the privacy settings on the admin screen. Real browser, core,
 * relay and Graph API simulator. Run with `node scripts/test.mjs --vitest-only tests/ui/privacy.test.ts`.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpc } from '../../electron/core/testing/users';
import { openDesk, RECEPTIONIST, runAxe, screenshot, type Browser, type Desk, type Person, type Stack } from './stack';

const PATIENT = '31612345678';
/** Wrote more than 24 hours ago: only templates go to them. */
const LATE = '31612345999';
const HEAD: Person = { username: 'marleen', displayName: 'Marleen de Wit', roles: ['receptionist', 'admin'] };

let desk: Desk;
let stack: Stack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST, HEAD] });
  ({ stack, browser, page } = desk);
  await desk.signInAs(RECEPTIONIST);
}, 120_000);

afterAll(() => desk?.close());

async function axeClean(): Promise<void> {
  const violations = await runAxe(page);
  expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
}

describe('privacy at the desk', () => {
  it('warns about personal data with the parts highlighted, sends on confirm, and refuses in block mode', async () => {
    await page.getByText('No conversations yet').waitFor({ timeout: 15_000 });
    await stack.sim.postInbound({ from: PATIENT, name: 'Pieter Bakker', text: 'Waar moet ik de rekening naar overmaken?' });
    const item = page.locator('.conv-item', { hasText: 'Pieter Bakker' });
    await item.waitFor({ timeout: 10_000 });
    await item.click();

    const composer = page.getByLabel('Message', { exact: true });
    const text = 'Graag naar NL91ABNA0417164300, vragen via balie@example.org';
    await composer.fill(text);
    await composer.press('Enter');
    const guard = page.getByRole('alertdialog', { name: 'This message contains personal data' });
    await guard.waitFor({ timeout: 5_000 });
    const marks = await guard.locator('mark.privacy-finding').evaluateAll((xs) => xs.map((x) => x.firstChild?.textContent ?? ''));
    expect(marks).toEqual(['NL91ABNA0417164300', 'balie@example.org']);
    await screenshot(page, 'privacy-01-send-guard-warn');
    await axeClean();
    expect(stack.sim.sends).toHaveLength(0);
    await guard.getByRole('button', { name: 'Send anyway' }).click();
    await stack.sim.waitForSends(1);
    expect(JSON.stringify(stack.sim.sends[0]!.request)).toContain('NL91ABNA0417164300');
    await page.locator('.msg.out', { hasText: 'balie@example.org' }).waitFor();

    await desk.admin('privacy.updateSettings', { sendGuard: 'block' });
    await composer.fill('Mijn adres is info@example.org');
    await composer.press('Enter');
    await guard.waitFor({ timeout: 5_000 });
    await guard.getByText('The clinic does not allow sending these over WhatsApp').waitFor();
    expect(await guard.getByRole('button', { name: 'Send anyway' }).count()).toBe(0);
    await screenshot(page, 'privacy-02-send-guard-block');
    await axeClean();
    await guard.getByRole('button', { name: 'Edit message' }).click();
    expect(await guard.count()).toBe(0);
    expect(await composer.inputValue()).toBe('Mijn adres is info@example.org');
    await new Promise((r) => setTimeout(r, 500));
    expect(stack.sim.sends).toHaveLength(1);
    await desk.admin('privacy.updateSettings', { sendGuard: 'warn' });
  });

  it('shows an opt-out after the patient writes STOP, and why templates are not sent', async () => {
    await stack.sim.postInbound({ from: PATIENT, name: 'Pieter Bakker', text: 'STOP' });
    await page.getByTestId('thread').getByText('STOP', { exact: true }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    const panel = page.locator('#contact-panel');
    await panel.getByText('Opted out', { exact: true }).waitFor({ timeout: 10_000 });
    await panel.getByText('No templates go to this patient.', { exact: false }).waitFor();
    // A receptionist alone sees neither the legal hold nor the export.
    expect(await panel.getByText('Legal hold', { exact: true }).count()).toBe(0);
    expect(await panel.getByText('Export everything about this patient').count()).toBe(0);
    await screenshot(page, 'privacy-03-opted-out');
    await axeClean();
  });

  it('warns about personal data typed into a template’s variables, refuses it in block mode, and refuses any template to a patient who opted out', async () => {
    await stack.sim.postInbound({ from: LATE, name: 'Greet Jansen', text: 'Dank voor de uitslag.', at: Date.now() - 26 * 3_600_000 });
    const item = page.locator('.conv-item', { hasText: 'Greet Jansen' });
    await item.waitFor({ timeout: 10_000 });
    await item.click();
    await page.getByTestId('thread').getByText('Dank voor de uitslag.').waitFor();
    const picker = page.getByTestId('template-picker');
    const sync = page.getByRole('button', { name: 'Sync templates from WhatsApp' });
    if (await sync.isVisible()) await sync.click();
    await picker.getByLabel('Template', { exact: true }).selectOption({ label: 'Appointment reminder · English' });
    const name = picker.getByLabel('Variable {{1}} (for example “Anna”)');
    const when = picker.getByLabel('Variable {{2}} (for example “Thursday 14:30”)');
    await name.fill('Greet');
    await when.fill('Friday 10:30, results to greet.jansen@example.org');
    const templateSends = () => stack.sim.sends.filter((x) => x.type === 'template' && x.to === LATE);

    // Warn: the value is highlighted where it stands in the text the patient would get; sent on confirm.
    await picker.getByRole('button', { name: 'Send template' }).click();
    const guard = page.getByRole('alertdialog', { name: 'This message contains personal data' });
    await guard.waitFor({ timeout: 5_000 });
    expect(await guard.locator('mark.privacy-finding').evaluateAll((xs) => xs.map((x) => x.firstChild?.textContent ?? ''))).toEqual(['greet.jansen@example.org']);
    expect(await guard.locator('blockquote').textContent()).toContain('Hello Greet, this is a reminder of your appointment on Friday 10:30, results to');
    await screenshot(page, 'privacy-06-template-guard-warn');
    await axeClean();
    expect(templateSends()).toHaveLength(0);
    await guard.getByRole('button', { name: 'Send anyway' }).click();
    await expect.poll(() => templateSends().length, { timeout: 10_000 }).toBe(1);
    expect(JSON.stringify(templateSends()[0]!.request)).toContain('greet.jansen@example.org');

    // Block: only "Edit message", which returns to the variable that holds the identifier; nothing sent.
    await desk.admin('privacy.updateSettings', { sendGuard: 'block' });
    await picker.getByLabel('Template', { exact: true }).selectOption({ label: 'Appointment reminder · English' });
    await name.fill('Greet');
    await when.fill('Friday 10:30, or mail greet.jansen@example.org');
    await picker.getByRole('button', { name: 'Send template' }).click();
    await guard.getByText('The clinic does not allow sending these over WhatsApp').waitFor({ timeout: 5_000 });
    expect(await guard.getByRole('button', { name: 'Send anyway' }).count()).toBe(0);
    await screenshot(page, 'privacy-07-template-guard-block');
    await axeClean();
    await guard.getByRole('button', { name: 'Edit message' }).click();
    expect(await guard.count()).toBe(0);
    expect(await page.locator(':focus').getAttribute('id')).toBe('tpl-var-1');
    await when.fill('Friday 10:30');
    await picker.getByRole('button', { name: 'Send template' }).click();
    await expect.poll(() => templateSends().length, { timeout: 10_000 }).toBe(2);
    await desk.admin('privacy.updateSettings', { sendGuard: 'warn' });

    // Opted out (recorded at the desk): the picker still says why nothing goes.
    const reception = await desk.as(RECEPTIONIST);
    const conversation = (await rpc(reception, 'inbox.listConversations', {})).items.find((c) => c.contact.displayName === 'Greet Jansen')!;
    await rpc(reception, 'privacy.recordConsent', { contactId: conversation.contact.id, status: 'opted_out', source: 'desk', note: 'asked at the desk' });
    // Recorded at another desk: this one's contact panel shows it without a reload.
    await page.locator('#contact-panel').getByText('Opted out', { exact: true }).waitFor({ timeout: 5_000 });
    await picker.getByLabel('Template', { exact: true }).selectOption({ label: 'Appointment reminder · English' });
    await name.fill('Greet');
    await when.fill('Friday 10:30');
    await picker.getByRole('button', { name: 'Send template' }).click();
    await picker.getByRole('alert').getByText('This patient opted out of WhatsApp messages', { exact: false }).waitFor({ timeout: 5_000 });
    await screenshot(page, 'privacy-08-template-opted-out');
    await new Promise((r) => setTimeout(r, 500));
    expect(templateSends()).toHaveLength(2);
  });

  it('gives an admin who is also a receptionist the legal hold, the export, the open requests and the settings', async () => {
    await desk.switchTo(HEAD);
    const item = page.locator('.conv-item', { hasText: 'Pieter Bakker' });
    await item.waitFor({ timeout: 10_000 });
    await item.click();
    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    const panel = page.locator('#contact-panel');
    await panel.getByText('Opted out', { exact: true }).waitFor({ timeout: 10_000 });
    await panel.getByText('Legal hold', { exact: true }).waitFor();
    await panel.getByText('Export everything about this patient').waitFor();
    await screenshot(page, 'privacy-04-admin-contact');
    await axeClean();

    await page.getByRole('button', { name: 'Users & sessions' }).click();
    const admin = page.getByTestId('admin-screen');
    await admin.getByRole('heading', { name: 'Patients’ requests' }).waitFor({ timeout: 10_000 });
    await admin.getByRole('heading', { name: 'Privacy', exact: true }).waitFor();
    await admin.getByRole('group', { name: 'When a message contains personal data' }).waitFor();
    await screenshot(page, 'privacy-05-admin-screen');
    await axeClean();
    expect(await browser.cspViolations()).toEqual([]);
  });
});
