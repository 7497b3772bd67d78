/**
 * The receptionist's desk in a real browser: Chromium drives the built renderer through the web
 * harness against a real core (SQLCipher + keychain), the real relay and the Graph API simulator.
 * Run with `node scripts/test.mjs --vitest-only tests/ui` (the core needs the keychain).
 * Screens are saved under test-results/screenshots/.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { keychainAccounts } from '../../electron/core/keys/accounts';
import { createKeytarSecretStore } from '../../electron/core/keys/secretStore';
import { startCore } from '../../electron/core/startCore';
import { adminConnection, rpc, TEST_HASH_COST } from '../../electron/core/testing/users';
import { createWebHarness } from '../../electron/core/testing/webHarness';
import { QUICK_REPLIES_MAX } from '../../shared/rpc';
import { IT_ADMIN, openDesk, RECEPTIONIST, runAxe, screenshot, TENANT_ID, TEST_PASSWORD, WABA_ID, type Browser, type Stack, type Desk } from './stack';

let desk: Desk;
let rendererDir: string;
let stack: Stack;
let browser: Browser;
let page: Page;
/** What the wizard showed the IT admin, for the new-hardware test at the end. */
let recoveryKey = '';

const ANNA = '31612345678';
const KLAUS = '4915112345678';
const EMMA = '447700900123';
const OLD = '31687654321';

beforeAll(async () => {
  // A first run: the wizard's first step creates the administrator.
  desk = await openDesk({ firstAdmin: false });
  ({ stack, browser, page, rendererDir } = desk);
}, 120_000);

afterAll(() => desk?.close());

async function expectNoAxeViolations(screen: string): Promise<void> {
  const violations = await runAxe(page);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

const conversationButton = (name: string) => page.locator('.conv-item', { hasText: name });

describe('receptionist desk through the web harness', () => {
  it('walks the IT admin through their account, pairing, WhatsApp setup and the recovery key on first run', async () => {
    await page.getByRole('heading', { name: 'Set up Clinic Inbox' }).waitFor();
    await page.getByRole('heading', { name: 'Create the administrator' }).waitFor();
    expect(await page.getByTestId('setup-wizard').textContent()).toContain('Step 1 of 4 — Administrator');
    await page.getByLabel('Your name').fill(IT_ADMIN.displayName);
    await page.getByLabel('Username').fill(IT_ADMIN.username);
    // A short password is refused with the policy's own words, next to the field, and nothing is created.
    const password = page.getByLabel('Password', { exact: true });
    await password.fill('short pass');
    expect(await page.getByTestId('password-length').textContent()).toBe('10 of 15 characters — 5 more needed');
    await page.getByRole('button', { name: 'Create and continue' }).click();
    const refused = page.getByTestId('password-rejected');
    await refused.waitFor();
    expect(await refused.textContent()).toMatch(/15/);
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, '00-create-admin-refused');
    await expectNoAxeViolations('create the administrator');
    const probe = stack.core.connect('test-probe');
    expect(await rpc(probe, 'auth.status')).toMatchObject({ hasAdmin: false });

    await password.fill(TEST_PASSWORD);
    expect(await page.getByTestId('password-length').textContent()).toBe(`${[...TEST_PASSWORD].length} characters — long enough`);
    await page.getByRole('button', { name: 'Create and continue' }).click();
    // Signed in as that admin at once: the wizard goes on with the relay.
    await page.getByText('Step 2 of 4 — Relay').waitFor();
    expect(await rpc(probe, 'auth.status')).toMatchObject({ hasAdmin: true });
    probe.close();
    await screenshot(page, '01-setup-relay');
    await expectNoAxeViolations('setup (relay)');

    // A wrong code is refused with a message a person can act on, and nothing changes.
    await page.getByLabel('Relay address').fill(stack.relay.url);
    await page.getByLabel('Enrolment code').fill('AAAA-BBBB-CCCC-DDDD');
    await page.getByRole('button', { name: 'Connect to relay' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByTestId('setup-wizard').textContent()).toContain('Step 2 of 4');
    expect(await desk.admin('relay.status', {})).toMatchObject({ state: 'not_paired' });

    await page.getByLabel('Enrolment code').fill((await stack.enrolmentCode()).toLowerCase());
    await page.getByRole('button', { name: 'Connect to relay' }).click();
    await page.getByText('Step 3 of 4 — WhatsApp').waitFor();
    await page.getByLabel('WhatsApp Business account ID').fill(WABA_ID);
    await page.getByLabel('Access token').fill(stack.accessToken);
    await page.getByText('Advanced').click();
    await page.getByLabel('Graph API address (testing only)').fill(stack.sim.url);
    await screenshot(page, '02-setup-whatsapp');
    await expectNoAxeViolations('setup (WhatsApp)');
    await page.getByRole('button', { name: 'Save and continue' }).click();

    // The recovery key is shown once, and the inbox waits until the admin says it is stored.
    await page.getByText('Step 4 of 4 — Recovery key').waitFor();
    await page.getByRole('button', { name: 'Create the recovery key' }).click();
    recoveryKey = (await page.getByTestId('recovery-key').textContent()) ?? '';
    expect(recoveryKey).toMatch(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/);
    const finish = page.getByRole('button', { name: 'Finish' });
    expect(await finish.isDisabled()).toBe(true);
    await screenshot(page, '02b-setup-recovery-key');
    await expectNoAxeViolations('setup (recovery key)');
    await page.getByLabel('I have printed or written down the recovery key and stored it safely.').check();
    await finish.click();

    // The admin lands on users and sessions, not on patients; the receptionist signs in at the desk.
    await page.getByRole('button', { name: 'Users & sessions' }).waitFor();
    expect(await page.getByRole('button', { name: 'Inbox', exact: true }).count()).toBe(0);
    await desk.as(RECEPTIONIST);
    await desk.switchTo(RECEPTIONIST);
    await page.getByText('No conversations yet').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('relay-banner').count()).toBe(0);
    await screenshot(page, '03-inbox-empty');
  });

  it('shows a patient message within a second, without reload', async () => {
    const started = Date.now();
    const { status } = await stack.sim.postInbound({ from: ANNA, name: 'Anna de Vries', text: 'Goedemorgen, kan ik mijn afspraak van donderdag verzetten?' });
    expect(status).toBe(200);
    await conversationButton('Anna de Vries').waitFor({ timeout: 5_000 });
    const elapsed = Date.now() - started;
    expect(elapsed, `message took ${elapsed} ms to appear`).toBeLessThan(1_000);
    expect(await conversationButton('Anna de Vries').textContent()).toContain('afspraak van donderdag');
    expect(await conversationButton('Anna de Vries').locator('.badge').textContent()).toBe('1');

    await stack.sim.postInbound({ from: KLAUS, name: 'Klaus Becker', text: 'Guten Tag, ich brauche ein Rezept für meine Blutdrucktabletten.' });
    await stack.sim.postInbound({ from: EMMA, name: 'Emma Clarke', text: 'Hi, is the clinic open on Saturday morning?' });
    await conversationButton('Emma Clarke').waitFor();
    await screenshot(page, '04-inbox');
    await expectNoAxeViolations('inbox');
  });

  it('sends a reply that reaches WhatsApp, and its ticks follow the status webhooks to read', async () => {
    await conversationButton('Anna de Vries').click();
    await page.getByTestId('thread').getByText('kan ik mijn afspraak van donderdag verzetten').waitFor();
    // Opening the conversation marks it read.
    await expect.poll(() => conversationButton('Anna de Vries').locator('.badge').count()).toBe(0);
    expect(await page.getByTestId('window-state').textContent()).toMatch(/Free replies possible for 2[34] h/);

    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill('Natuurlijk! Schikt vrijdag om 10:30?');
    await composer.press('Shift+Enter');
    await composer.pressSequentially('Groet, de praktijk');
    await composer.press('Enter');

    await stack.sim.waitForSends(1);
    const send = stack.sim.sends[0]!;
    expect(send.to).toBe(ANNA);
    expect(JSON.stringify(send.request)).toContain('Natuurlijk! Schikt vrijdag om 10:30?\\nGroet, de praktijk');
    expect(await composer.inputValue()).toBe('');

    const bubble = page.locator('.msg.out', { hasText: 'Schikt vrijdag' });
    await bubble.waitFor();
    for (const status of ['sent', 'delivered', 'read'] as const) {
      expect(await stack.sim.postStatus(send.wamid, status)).toBe(200);
      await expect.poll(() => bubble.getAttribute('data-status'), { timeout: 5_000 }).toBe(status);
    }
    expect(await bubble.getByTestId('ticks').getAttribute('title')).toBe('Read');
    await screenshot(page, '05-thread');
    await expectNoAxeViolations('thread');
  });

  it('shows why a message failed on its tick', async () => {
    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill('Tot vrijdag!');
    await composer.press('Enter');
    await stack.sim.waitForSends(2);
    const send = stack.sim.sends[1]!;
    await stack.sim.postStatus(send.wamid, 'failed', { code: 131047, title: 'Re-engagement message' });
    const bubble = page.locator('.msg.out', { hasText: 'Tot vrijdag!' });
    await expect.poll(() => bubble.getAttribute('data-status'), { timeout: 5_000 }).toBe('failed');
    expect(await bubble.getByTestId('ticks').getAttribute('title')).toContain('Re-engagement message');
  });

  it('outside the 24-hour window disables free text and sends an approved template', async () => {
    await stack.sim.postInbound({ from: OLD, name: 'Pieter Jansen', text: 'Bedankt voor de uitslag.', at: Date.now() - 26 * 3_600_000 });
    await conversationButton('Pieter Jansen').click();
    await page.getByTestId('thread').getByText('Bedankt voor de uitslag.').waitFor();
    expect(await page.getByTestId('window-state').textContent()).toMatch(/More than 24 hours/);
    expect(await page.getByLabel('Message', { exact: true }).count()).toBe(0);

    const sync = page.getByRole('button', { name: 'Sync templates from WhatsApp' });
    if (await sync.isVisible()) await sync.click();
    const select = page.getByLabel('Template', { exact: true });
    await select.waitFor();
    // Only approved templates are offered.
    expect(await select.locator('option').allTextContents()).not.toContain('Promo draft · English');
    // Templates read by name and language, and each variable by Meta's example for it.
    await select.selectOption({ label: 'Appointment reminder · English' });
    await page.getByLabel('Variable {{1}} (for example “Anna”)').fill('Pieter');
    await page.getByLabel('Variable {{2}} (for example “Thursday 14:30”)').fill('Friday 10:30');
    expect(await page.getByTestId('template-preview').textContent()).toBe(
      'Hello Pieter, this is a reminder of your appointment on Friday 10:30. Reply to this message if you need to change it.',
    );
    await screenshot(page, '06-template');
    await expectNoAxeViolations('template picker');
    await page.getByRole('button', { name: 'Send template' }).click();

    await stack.sim.waitForSends(3);
    const send = stack.sim.sends[2]!;
    expect(send.type).toBe('template');
    expect(send.to).toBe(OLD);
    expect(JSON.stringify(send.request)).toContain('appointment_reminder');
    expect(JSON.stringify(send.request)).toContain('Friday 10:30');
    // The thread marks what went out as a template.
    const sent = page.locator('.msg.out', { hasText: 'Friday 10:30' });
    await sent.waitFor();
    expect(await sent.getByTestId('template-marker').textContent()).toBe('Template');
  });

  it('finds a message by search, highlighted as text, and opens its conversation', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('/');
    expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe('search-input');
    await page.keyboard.type('Blutdrucktabletten');
    const hit = page.getByTestId('search-results').locator('.hit').first();
    await hit.waitFor({ timeout: 5_000 });
    expect(await hit.locator('mark').first().textContent()).toMatch(/Blutdrucktabletten/i);
    // Highlights are <mark> elements built from text, never parsed HTML.
    expect(await page.getByTestId('search-results').innerHTML()).not.toContain('\uE000');
    await screenshot(page, '07-search');
    await hit.click();
    await page.getByRole('heading', { name: 'Klaus Becker' }).waitFor();
  });

  it('moves between conversations with the arrow keys and opens the contact panel', async () => {
    await page.getByRole('searchbox', { name: 'Search names, numbers, notes and messages' }).fill('');
    await page.locator('.conv-item').first().waitFor();
    await page.locator('.messages').click();
    const names = await page.locator('.conv-item .conv-name').allTextContents();
    const at = names.indexOf((await page.locator('.thread-header h2').textContent()) ?? '');
    expect(at).toBeGreaterThanOrEqual(0);
    const down = at < names.length - 1;
    await page.keyboard.press(down ? 'ArrowDown' : 'ArrowUp');
    await expect.poll(() => page.locator('.thread-header h2').textContent()).toBe(names[down ? at + 1 : at - 1]);

    await page.getByRole('button', { name: 'Contact', exact: true }).click();
    await page.getByLabel('Notes (only on this computer)').fill('Prefers mornings.');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved', { exact: true }).waitFor();
    await screenshot(page, '08-contact');
    await expectNoAxeViolations('contact panel');
    await page.getByRole('button', { name: 'Close', exact: true }).click();
  });

  it('shows a patient photo inline, fetched through the core under the strict CSP', async () => {
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
    const mediaId = stack.sim.addMedia({ bytes: png, mimeType: 'image/png' });
    await stack.sim.postInbound({ from: KLAUS, name: 'Klaus Becker', media: { kind: 'image', mediaId, caption: 'Foto vom Rezept' } });
    await conversationButton('Klaus Becker').click();
    const img = page.getByTestId('thread').locator('img.media-image');
    await img.waitFor({ timeout: 15_000 });
    expect(await img.getAttribute('src')).toMatch(/^blob:/);
    await expect.poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth)).toBe(1);
    expect(await img.getAttribute('alt')).toBe('Foto vom Rezept');
  });

  it('plays a voice message in place once asked, fetched through the core under the strict CSP', async () => {
    const wav = silentWav(0.2);
    const mediaId = stack.sim.addMedia({ bytes: wav, mimeType: 'audio/wav' });
    await stack.sim.postInbound({ from: KLAUS, name: 'Klaus Becker', media: { kind: 'audio', mediaId } });
    await conversationButton('Klaus Becker').click();
    const play = page.getByTestId('thread').getByRole('button', { name: /Play voice message/ });
    await play.waitFor({ timeout: 15_000 });
    await play.click();
    const audio = page.getByTestId('thread').locator('audio.media-audio');
    await audio.waitFor({ timeout: 5_000 });
    expect(await audio.getAttribute('src')).toMatch(/^blob:/);
    await expect.poll(() => audio.evaluate((el) => (el as unknown as { duration: number }).duration), { timeout: 5_000 }).toBeGreaterThan(0.1);
  });

  it('assigns, resolves and filters conversations, and keeps quick replies on this computer', async () => {
    await conversationButton('Klaus Becker').click();
    await page.getByRole('button', { name: 'Assign to me' }).click();
    await page.getByText('Assigned to you').waitFor();
    await page.getByRole('button', { name: 'Mine', exact: true }).click();
    await expect.poll(() => page.locator('.conv-item .conv-name').allTextContents()).toEqual(['Klaus Becker']);

    await page.getByLabel('Conversation status').selectOption('resolved');
    await page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await expect.poll(() => page.locator('.conv-item .conv-name').allTextContents()).toContain('Klaus Becker');
    await page.getByRole('button', { name: 'Open', exact: true }).click();

    // Quick replies are kept in the encrypted database, never in the browser's storage (which
    // Chromium writes to disk in plaintext). A list an earlier version left in localStorage moves
    // there on the next load.
    const SAVED = 'Ihr Rezept liegt ab morgen an der Rezeption bereit.';
    const OLD = 'Bitte bringen Sie Ihre Versichertenkarte mit.';
    const receptionist = await desk.as(RECEPTIONIST);
    const storedReplies = async () => {
      const result = await receptionist.dispatch('quickReplies.list', {});
      return result.ok ? (result.value as { text: string }[]).map((r) => r.text) : result.error;
    };
    // Klaus is resolved now, so not in the list after a reload; Anna's window is open too.
    const openQuickReplies = async () => {
      await conversationButton('Anna de Vries').click();
      await page.getByRole('button', { name: 'Quick replies' }).click();
    };
    expect(await browser.cspViolations()).toEqual([]); // a reload starts a new record
    await page.evaluate(`localStorage.setItem('clinic-inbox.quick-replies', ${JSON.stringify(JSON.stringify([OLD]))})`);
    await page.reload();
    // A reload opens a new connection, which starts signed out.
    await desk.signInAs(RECEPTIONIST);
    await openQuickReplies();
    await page.getByRole('button', { name: `Insert “${OLD}”` }).waitFor();
    await expect.poll(() => page.evaluate<string>('JSON.stringify(localStorage)')).not.toContain('Versichertenkarte');
    expect(await storedReplies()).toEqual([OLD]);

    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill(SAVED);
    await page.getByRole('button', { name: 'Save current text as quick reply' }).click();
    await page.getByRole('button', { name: /^Insert “Ihr Rezept liegt/ }).waitFor();
    await composer.fill('');
    await page.getByRole('button', { name: /^Insert “Ihr Rezept liegt/ }).click();
    expect(await composer.inputValue()).toBe(SAVED);
    await composer.fill('');
    await screenshot(page, '08b-quick-replies');
    await expectNoAxeViolations('quick replies');

    // It survives a reload, lives in the database, and the browser's storage holds none of it.
    expect(await browser.cspViolations()).toEqual([]);
    await page.reload();
    await desk.signInAs(RECEPTIONIST);
    await openQuickReplies();
    await page.getByRole('button', { name: /^Insert “Ihr Rezept liegt/ }).waitFor();
    expect(await storedReplies()).toEqual([OLD, SAVED]);
    const local = await page.evaluate<string>('JSON.stringify(localStorage) + JSON.stringify(sessionStorage)');
    expect(local).not.toContain('Rezept');
    expect(local).not.toContain('Versichertenkarte');

    // Removing one removes it from the database.
    await page.getByRole('button', { name: `Remove quick reply “${OLD}”` }).click();
    await page.getByRole('button', { name: `Insert “${OLD}”` }).waitFor({ state: 'detached' });
    expect(await storedReplies()).toEqual([SAVED]);

    // A full list says so, and saving changes nothing.
    const others = Array.from({ length: QUICK_REPLIES_MAX - 1 }, (_, i) => `Antwort ${i + 1}`);
    for (const text of others) expect((await receptionist.dispatch('quickReplies.add', { text })).ok).toBe(true);
    await page.getByRole('button', { name: `Insert “Antwort ${QUICK_REPLIES_MAX - 1}”` }).waitFor();
    await composer.fill('Noch eine Antwort');
    await page.getByRole('button', { name: 'Save current text as quick reply' }).click();
    await page.getByRole('alert').filter({ hasText: `There are already ${QUICK_REPLIES_MAX} quick replies. Remove one before saving another.` }).waitFor();
    expect(await storedReplies()).toEqual([SAVED, ...others]);
    await composer.fill('');
    const stored = await receptionist.dispatch('quickReplies.list', {});
    for (const r of (stored.ok ? stored.value : []) as { id: number; text: string }[]) {
      if (r.text !== SAVED) await receptionist.dispatch('quickReplies.remove', { id: r.id });
    }
    await page.getByRole('button', { name: `Insert “Antwort 1”` }).waitFor({ state: 'detached' });
  });

  it('says the relay is offline when it stops, and clears when it returns', async () => {
    await stack.relay.kill('SIGKILL');
    const banner = page.getByTestId('relay-banner');
    await banner.filter({ hasText: 'Offline since' }).waitFor({ timeout: 15_000 });
    expect(await banner.textContent()).toMatch(/Offline since \d{2}:\d{2}/);
    await screenshot(page, '09-relay-offline');

    await stack.relay.restart();
    await banner.waitFor({ state: 'detached', timeout: 30_000 });
    // Delivery resumes on the new connection.
    expect((await stack.sim.postInbound({ from: EMMA, name: 'Emma Clarke', text: 'Back online? Saturday then.' })).status).toBe(200);
    await conversationButton('Emma Clarke').filter({ hasText: 'Saturday then' }).waitFor({ timeout: 10_000 });
  });

  it('says plainly when the WhatsApp token has expired, and recovers with a new one', async () => {
    const newToken = `EAAG${'n'.repeat(40)}`;
    stack.sim.rotateToken(newToken);
    await conversationButton('Anna de Vries').click();
    const composer = page.getByLabel('Message', { exact: true });
    await composer.fill('Is vrijdag nog goed?');
    await composer.press('Enter');
    const banner = page.getByTestId('token-banner');
    await banner.filter({ hasText: 'access token has expired' }).waitFor({ timeout: 10_000 });
    await screenshot(page, '10-token-expired');
    // Only an admin may enter a token: the receptionist is told, the admin gets the button.
    expect(await banner.getByRole('button').count()).toBe(0);
    await desk.switchTo(IT_ADMIN);

    await banner.getByRole('button', { name: 'Enter a new token' }).click();
    await page.getByLabel('WhatsApp Business account ID').fill(WABA_ID);
    await page.getByLabel('Access token').fill(newToken);
    await page.getByText('Advanced').click();
    await page.getByLabel('Graph API address (testing only)').fill(stack.sim.url);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    // The wizard says what the new token connects to before the desk returns.
    await page.getByTestId('connected-summary').locator('dl').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Continue' }).click();
    await banner.waitFor({ state: 'detached', timeout: 10_000 });
    await desk.switchTo(RECEPTIONIST);
  });

  it('says plainly when the relay no longer accepts this computer, and an admin pairs it again', async () => {
    const listed = stack.relay.cli(['list']);
    const tenants = JSON.parse(listed.stdout) as { id: string; appliances: { id: string; revokedAt: number | null }[] }[];
    const active = tenants.find((x) => x.id === TENANT_ID)?.appliances.find((a) => a.revokedAt === null);
    expect(active, listed.stderr).toBeDefined();
    expect(stack.relay.cli(['revoke', active!.id]).status).toBe(0);

    const banner = page.getByTestId('relay-banner');
    await banner.filter({ hasText: 'no longer accepts this computer' }).waitFor({ timeout: 10_000 });
    await screenshot(page, '10b-relay-refused');
    await expectNoAxeViolations('relay refused banner');
    expect(await banner.getByRole('button').count()).toBe(0);
    await desk.switchTo(IT_ADMIN);

    await banner.getByRole('button', { name: 'Pair again' }).click();
    await page.getByLabel('Relay address').fill(stack.relay.url);
    await page.getByLabel('Enrolment code').fill(await stack.enrolmentCode());
    await page.getByRole('button', { name: 'Connect to relay' }).click();
    await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 10_000 });
    await banner.waitFor({ state: 'detached', timeout: 10_000 });
    await desk.switchTo(RECEPTIONIST);
    expect((await stack.sim.postInbound({ from: EMMA, name: 'Emma Clarke', text: 'Paired again, see you Monday.' })).status).toBe(200);
    await conversationButton('Emma Clarke').filter({ hasText: 'see you Monday' }).waitFor({ timeout: 10_000 });
  });

  it('speaks Dutch and German on request', async () => {
    await page.getByLabel('Language').selectOption('nl');
    await page.getByRole('button', { name: 'Ongelezen', exact: true }).waitFor();
    await screenshot(page, '11-inbox-nl');
    await page.getByLabel('Taal').selectOption('de');
    await page.getByRole('button', { name: 'Ungelesen', exact: true }).waitFor();
    await page.getByLabel('Sprache').selectOption('en');
  });

  it('on new hardware, the IT admin restores access with the recovery key and the conversations come back', async () => {
    // New hardware: the data folder came along, this computer's keychain holds nothing of it.
    const { dataDir, installationId } = stack.core;
    await stack.harness.close();
    await stack.core.close();
    // A patient writes while the clinic's computer is dead: the relay keeps it for this appliance.
    expect((await stack.sim.postInbound({ from: KLAUS, name: 'Klaus Becker', text: 'Ist die Praxis heute erreichbar?' })).status).toBe(200);
    const secrets = await createKeytarSecretStore();
    for (const account of Object.values(keychainAccounts(installationId))) await secrets.delete(account);
    const core = await startCore({ dataDir, logger: pino({ level: 'silent' }), graph: { baseUrl: stack.sim.url }, passwordHashCost: TEST_HASH_COST });
    const harness = createWebHarness({ core, rendererDir, logger: pino({ level: 'silent' }) });
    try {
      await page.goto(await harness.listen(0));
      await page.getByRole('heading', { name: "This computer cannot open the clinic's data" }).waitFor();
      await screenshot(page, '12-restore-access');
      await expectNoAxeViolations('restore access');

      const input = page.getByLabel('Recovery key');
      await input.fill(recoveryKey.replace(/^.{4}/, 'ZZZZ'));
      await page.getByRole('button', { name: 'Restore access' }).click();
      await page.getByRole('alert').filter({ hasText: 'typo' }).waitFor();
      expect(await secrets.get(keychainAccounts(installationId).databaseKey)).toBeNull();

      // Typed the way people type: lower case, spaces instead of dashes.
      await input.fill(recoveryKey.toLowerCase().replace(/-/g, ' '));
      await page.getByRole('button', { name: 'Restore access' }).click();
      // The accounts came back with the data: the IT admin signs in, and the wizard asks for the
      // WhatsApp token, which stayed in the old computer's keychain.
      await desk.signInAs(IT_ADMIN);
      await page.getByText('Step 3 of 4 — WhatsApp').waitFor({ timeout: 10_000 });
      await page.getByLabel('WhatsApp Business account ID').fill(WABA_ID);
      const token = `EAAG${'n'.repeat(40)}`;
      stack.sim.rotateToken(token);
      await page.getByLabel('Access token').fill(token);
      await page.getByText('Advanced').click();
      await page.getByLabel('Graph API address (testing only)').fill(stack.sim.url);
      await page.getByRole('button', { name: 'Save and continue' }).click();
      await page.getByRole('button', { name: 'Users & sessions' }).waitFor({ timeout: 10_000 });
      await desk.switchTo(RECEPTIONIST);
      await conversationButton('Anna de Vries').waitFor({ timeout: 10_000 });

      // The device keys came back with the recovery key: still the appliance the relay knows, so what
      // waited there arrives, without pairing again.
      await conversationButton('Klaus Becker').filter({ hasText: 'heute erreichbar' }).waitFor({ timeout: 10_000 });
      await screenshot(page, '13-restored-inbox');
      expect(await page.getByTestId('relay-banner').count()).toBe(0);

      const audit = await (await adminConnection(core)).dispatch('audit.verify', { withRelayWitness: true });
      expect(audit).toMatchObject({ ok: true, value: { chain: { ok: true } } });
    } finally {
      await harness.close();
      await core.close();
    }
  });

  it('never tripped the strict CSP', async () => {
    expect(await browser.cspViolations()).toEqual([]);
  });
});

/** A short silent 8 kHz mono PCM WAV file: real audio the browser can decode. */
function silentWav(seconds: number): Buffer {
  const samples = Math.round(8000 * seconds);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples * 2, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples * 2, 40);
  return Buffer.concat([header, Buffer.alloc(samples * 2)]);
}
