/**
 * Issue 9 at the desk: every message shape Meta sends, posted through the real relay into the real
 * core, shown to a receptionist as described (pin and "open in maps", labelled form answers, order
 * lines, the ad header, "edited", "This message was deleted", "sent from the phone", call lines,
 * "cannot show yet (type …)"), and the admin's banner counting what was shelved, ignored or
 * unattributed and Meta's errors. Run with `node scripts/test.mjs --vitest-only tests/ui/messageShapes.test.ts`.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ignoredFieldBody, messageShapes, unattributableBody, valueErrorBody } from '../../electron/core/testing/messageShapes';
import { IT_ADMIN, openDesk, RECEPTIONIST, screenshot, type Desk, type Stack } from './stack';

let desk: Desk;
let stack: Stack;
let page: Page;

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST] });
  ({ stack, page } = desk);
  await page.setViewportSize({ width: 1280, height: 2600 });
  await desk.signInAs(RECEPTIONIST);
}, 120_000);

afterAll(() => desk?.close());

describe('every message shape at the desk', () => {
  it('shows each shape as the patient meant it, never an empty bubble', async () => {
    await page.getByText('No conversations yet').waitFor({ timeout: 15_000 });
    const now = Math.floor(Date.now() / 1000) - 3600;
    for (const shape of messageShapes(now)) for (const body of shape.bodies) expect((await stack.relay.postWebhook(JSON.stringify(body))).status).toBe(200);
    for (const body of [unattributableBody(now), ignoredFieldBody(), valueErrorBody()]) expect((await stack.relay.postWebhook(JSON.stringify(body))).status).toBe(200);

    const item = page.locator('.conv-item', { hasText: 'Zoë Müller' });
    await item.waitFor({ timeout: 15_000 });
    await item.click();
    const thread = page.getByTestId('thread');
    await thread.getByText('Came from your ad: Grippeimpfung jetzt').waitFor({ timeout: 15_000 });
    await thread.getByText('This message was deleted').waitFor({ timeout: 15_000 });

    // Locations: with and without name and address; both with coordinates and a maps link.
    const locations = thread.getByTestId('location');
    await expect.poll(() => locations.count()).toBe(2);
    expect(await locations.nth(0).textContent()).toContain('52.37022, 4.89517');
    expect(await locations.nth(1).textContent()).toContain('Marienplatz 1, München');
    expect(await locations.nth(0).getByRole('link', { name: 'Open in maps' }).getAttribute('href')).toMatch(/^https:\/\/www\.openstreetmap\.org\//);
    // Replies, the form's labelled answers, the order, the cards.
    await thread.getByText('Bestätigen').waitFor();
    await thread.getByText('Dienstag 10:00').waitFor();
    await thread.getByText('Preferred date').waitFor();
    await thread.getByText('Check-up').waitFor();
    await thread.getByText('Allows the clinic to call').waitFor();
    await thread.getByText('Ja, ich komme').waitFor();
    const order = thread.getByTestId('order');
    expect(await order.textContent()).toContain('vit-d3');
    expect(await order.textContent()).toContain('Catalogue catalog-4711');
    await thread.getByText('Anna Beispiel').waitFor();
    await thread.getByText('Animated sticker').waitFor();
    await thread.getByText('Voice message').waitFor();
    await thread.getByText('Audio file').waitFor();
    await thread.getByText('So sieht das Knie aus').waitFor();
    // Edits and deletions.
    await thread.getByText('Termin am Mittwoch bitte').waitFor();
    expect(await thread.getByText('Termin am Dienstag bitte').count()).toBe(0);
    expect(await thread.locator('.msg', { hasText: 'Termin am Mittwoch bitte' }).textContent()).toContain('edited');
    expect(await thread.getByText('geheim123').count()).toBe(0);
    // The clinic's reply from its phone, outgoing.
    expect(await thread.locator('.msg.out', { hasText: 'Gern, bis Mittwoch!' }).textContent()).toContain('sent from the phone');
    // Calls as lines.
    await thread.getByText('Missed call').waitFor();
    await thread.getByText('Call, 3:05 min').waitFor();
    // What cannot be shown yet says so, with its type.
    await thread.getByText('A message this app cannot show yet (type poll_creation)').waitFor();
    await thread.getByText('A message this app cannot show yet (type hologram)').waitFor();
    // No bubble is empty.
    const empty = await thread.locator('.msg .bubble').evaluateAll((bubbles) => bubbles.filter((b) => (b.textContent ?? '').replace(/\s+/g, '').length < 8).length);
    expect(empty).toBe(0);

    const list = thread.locator('.message-list');
    await list.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await screenshot(page, 'shapes-01-thread');
    await thread.locator('.msg', { hasText: 'Grippeimpfung' }).scrollIntoViewIfNeeded();
    await screenshot(page, 'shapes-02-thread-end');
  });

  it('shows the admin what was shelved, ignored or unattributed, and Meta\'s error with its title and details', async () => {
    // On the same page: the admin's desk reads the status when it opens (no reload needed).
    await desk.switchTo(IT_ADMIN);
    const banner = page.getByTestId('ingest-banner');
    await banner.waitFor({ timeout: 15_000 });
    const text = (await banner.textContent()) ?? '';
    expect(text).toContain('account_update × 1');
    expect(text).toContain('1 message without a sender');
    expect(text).toContain('Meta reported error 130429: Rate limit hit — Cloud API message throughput has been reached.');

    // A new error while the admin's desk is open is pushed to it: no reload, no sign-in again.
    const another = JSON.stringify(valueErrorBody()).replace('130429', '131000').replace('"title":"Rate limit hit"', '"title":"Something went wrong"');
    expect((await stack.relay.postWebhook(another)).status).toBe(200);
    await banner.getByText('Meta reported error 131000: Something went wrong', { exact: false }).waitFor({ timeout: 15_000 });
    await page.setViewportSize({ width: 1280, height: 800 });
    await screenshot(page, 'shapes-03-admin-banner');
  });
});
