/**
 * What an IT admin sees when this computer holds a wrong Meta app secret: a banner saying messages
 * failed Meta's signature check (the patient's message nowhere on screen), and after entering the
 * right secret in the wizard, the banner gone and the message in the inbox. Real browser, core,
 * relay and Graph API simulator. Run with `node scripts/test.mjs --vitest-only tests/ui`.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchWebhook, textMessageChange } from '../../relay/testing/signWebhook';
import { IT_ADMIN, openDesk, PHONE_NUMBER_ID, RECEPTIONIST, runAxe, screenshot, WABA_ID, type Browser, type Stack, type Desk } from './stack';

const WRONG_SECRET = 'ffffffffffffffffffffffffffffffff';

let desk: Desk;
let stack: Stack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  // Set up as the wizard would, but with a mistyped app secret.
  desk = await openDesk({ setUp: { appSecret: WRONG_SECRET }, people: [RECEPTIONIST] });
  ({ stack, browser, page } = desk);
  // The IT admin's desk: the banner and the fix are theirs; patients are not.
  await desk.signInAs(IT_ADMIN);
}, 120_000);

afterAll(() => desk?.close());

describe('Meta signature check in the window', () => {
  it('warns the admin about messages that failed the check, and shows them once the right secret is entered', async () => {
    await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('signature-banner').count()).toBe(0);

    const body = batchWebhook([
      textMessageChange({ phoneNumberId: PHONE_NUMBER_ID, wamid: 'wamid.UI-SIG-1', text: 'Mag ik mijn afspraak verzetten?', from: '31611112222', name: 'Sanne Bakker' }),
    ]);
    expect((await stack.relay.postWebhook(body)).status).toBe(200);

    const banner = page.getByTestId('signature-banner');
    await banner.filter({ hasText: "1 WhatsApp message failed Meta's signature check" }).waitFor({ timeout: 10_000 });
    expect(await page.getByText('Sanne Bakker').count()).toBe(0);
    await screenshot(page, 'signature-01-banner');
    const violations = await runAxe(page);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);

    await banner.getByRole('button', { name: 'Check the app secret' }).click();
    // The wizard says the check is on and what it has done, so the admin can tell it is working.
    expect(await page.getByTestId('signature-status').textContent()).toBe(
      'Signature check is on. Since the secret was last entered: 0 verified, 0 vouched for by the relay only. Kept back: 1.',
    );
    await page.getByLabel('WhatsApp Business account ID').fill(WABA_ID);
    await page.getByLabel('Access token').fill(stack.accessToken);
    const secretField = page.getByLabel('App secret (optional)');
    expect(await secretField.getAttribute('type')).toBe('password');
    await secretField.fill(stack.relay.appSecret);
    // A clinic with its own Meta app: only what Meta signed may reach the inbox. Off as set up.
    const onlySigned = page.getByLabel('Only show messages Meta signed — for a clinic with its own Meta app');
    expect(await onlySigned.isChecked()).toBe(false);
    await onlySigned.check();
    await page.getByText('Advanced').click();
    await page.getByLabel('Graph API address (testing only)').fill(stack.sim.url);
    await screenshot(page, 'signature-02-wizard-only-signed');
    const wizardViolations = await runAxe(page);
    expect(wizardViolations, JSON.stringify(wizardViolations, null, 1)).toEqual([]);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    // The step then shows what the desk is connected to; Continue returns to the desk.
    await page.getByRole('button', { name: 'Continue' }).click();

    await banner.waitFor({ state: 'detached', timeout: 10_000 });
    // The shelved message was signed by Meta, so requiring the signature still lets it in.
    await desk.switchTo(RECEPTIONIST);
    await page.locator('.conv-item', { hasText: 'Sanne Bakker' }).waitFor({ timeout: 10_000 });
    expect(((await desk.admin('whatsapp.status', {})) as { signatureCheck: { required: boolean } }).signatureCheck.required).toBe(true);
    expect((await browser.cspViolations())).toEqual([]);
  });
});
