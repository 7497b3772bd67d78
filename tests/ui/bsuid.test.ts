/**
 * A patient who uses a WhatsApp username and shares no phone number, at the desk: the receptionist
 * sees the conversation, the contact panel says the number is not shared and shows the id WhatsApp
 * knows the patient by, the reply goes out (by `recipient`, never `to`) and its ticks move; a reply
 * Meta refuses for such a patient (131062) says why on its tick. Real browser, core, relay and
 * Graph API simulator. Run with `node scripts/test.mjs --vitest-only tests/ui`.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesk, RECEPTIONIST, runAxe, screenshot, type Browser, type Stack, type Desk } from './stack';

const BSUID = 'NL.5512345678901234';

let desk: Desk;
let stack: Stack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST] });
  ({ stack, browser, page } = desk);
  await desk.signInAs(RECEPTIONIST);
}, 120_000);

afterAll(() => desk?.close());

describe('a patient without a shared phone number at the desk', () => {
  it('can be answered, and the ticks and a refusal show as for anyone else', async () => {
    await page.getByText('No conversations yet').waitFor({ timeout: 15_000 });
    await stack.sim.postInbound({ userId: BSUID, username: 'fleur.d', name: 'Fleur Dekker', text: 'Is mijn recept al klaar?' });
    const item = page.locator('.conv-item', { hasText: 'Fleur Dekker' });
    await item.waitFor({ timeout: 10_000 });
    await item.click();
    await page.getByTestId('thread').getByText('Is mijn recept al klaar?').waitFor();

    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    const panel = page.locator('#contact-panel');
    await panel.getByText('Not shared').waitFor();
    expect(await panel.getByTestId('contact-bsuid').textContent()).toBe(BSUID);
    await screenshot(page, 'bsuid-01-contact');
    const violations = await runAxe(page);
    expect(violations, JSON.stringify(violations, null, 1)).toEqual([]);
    await page.getByRole('button', { name: 'Close', exact: true }).click();

    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill('Ja, u kunt het vanaf 14 uur ophalen.');
    await composer.press('Enter');
    await stack.sim.waitForSends(1);
    const send = stack.sim.sends[0]!;
    expect(send).toMatchObject({ to: null, recipient: BSUID });
    expect(send.request).not.toHaveProperty('to');

    const bubble = page.locator('.msg.out', { hasText: 'vanaf 14 uur' });
    for (const status of ['sent', 'delivered', 'read'] as const) {
      expect(await stack.sim.postStatus(send.wamid, status)).toBe(200);
      await expect.poll(() => bubble.getAttribute('data-status'), { timeout: 5_000 }).toBe(status);
    }

    stack.sim.inject('messages', { type: 'graph', code: 131062, message: '(#131062) Business-scoped User ID recipients are not supported for this message' });
    await composer.fill('Tot straks.');
    await composer.press('Enter');
    const refused = page.locator('.msg.out', { hasText: 'Tot straks.' });
    await expect.poll(() => refused.getAttribute('data-status'), { timeout: 10_000 }).toBe('failed');
    expect(await refused.getByTestId('ticks').getAttribute('title')).toContain('Business-scoped User ID recipients are not supported');
    await screenshot(page, 'bsuid-02-thread');
    expect(await browser.cspViolations()).toEqual([]);
  });
});
