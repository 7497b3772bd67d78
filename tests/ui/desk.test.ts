/**
 * A receptionist's day at the desk in Chromium through the web harness (real core, relay and Graph
 * API simulator): attachments, long texts, finding people, conversation state, noticing new
 * messages, right-to-left text and the narrow layout. Screenshots go to test-results/screenshots/.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesk, RECEPTIONIST, runAxe, screenshot, type Desk } from './stack';

let desk: Desk;
let page: Page;
const ANNA = '31612345678';
const LONG_NAME = 'Maria-Magdalena van den Berg-Oudshoorn';
const LAYLA = '971501234567';

/**
 * A valid PNG (solid colour), so the simulator and the preview both take it as an image; `padding`
 * bytes of comment make it large enough to be kept as a file beside the database.
 */
function png(padding = 0): Buffer {
  const crc = (buf: Buffer): number => {
    let c = ~0;
    for (const b of buf) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const w = 16;
  const raw = Buffer.alloc((w * 3 + 1) * w);
  for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) raw.set([11, 122, 92], y * (w * 3 + 1) + 1 + x * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(w, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...(padding > 0 ? [chunk('tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(padding, 0x78)]))] : []), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n');

beforeAll(async () => {
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST] });
  page = desk.page;
  await desk.signInAs(RECEPTIONIST);
  await desk.stack.sim.postInbound({ from: ANNA, name: LONG_NAME, text: 'Goedemorgen, kan ik de uitslag als pdf krijgen?' });
  await page.locator('.conv-item', { hasText: LONG_NAME }).waitFor({ timeout: 20_000 });
}, 180_000);

afterAll(() => desk?.close());

/** One computed style property of an element, run in the page (this file has no DOM types; the page's CSP forbids strings). */
function computedStyle(el: unknown, property: string): string {
  const view = globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> };
  return view.getComputedStyle(el)[property] ?? '';
}

const conversation = (name: string) => page.locator('.conv-item', { hasText: name });

async function expectAxeClean(screen: string): Promise<void> {
  const violations = await runAxe(page);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

describe("the receptionist's day", () => {
  it('shows the unread count in the title, and it changes when a message arrives', async () => {
    await expect.poll(() => page.title(), { timeout: 20_000 }).toBe('(1) Clinic Inbox');
    await desk.stack.sim.postInbound({ from: LAYLA, name: 'Layla Haddad', text: 'مرحبا، هل يمكنني تغيير موعدي إلى يوم الخميس؟' });
    await expect.poll(() => page.title(), { timeout: 20_000 }).toBe('(2) Clinic Inbox');
    expect(await page.locator('link[rel="icon"]').getAttribute('href')).toMatch(/^data:image\/png/);
  });

  it('renders an Arabic message right to left', async () => {
    await conversation('Layla Haddad').click();
    const text = page.locator('.msg.in .msg-text').last();
    await text.waitFor();
    const direction = await text.evaluate(computedStyle, 'direction');
    await screenshot(page, 'desk-01-arabic');
    expect(direction).toBe('rtl');
  });

  it('sends an image and a PDF with captions and sees them delivered', async () => {
    await conversation(LONG_NAME).click();
    const composer = page.getByTestId('composer');
    // 300 KB: stored as an encrypted file beside the database, and shown from it in the thread.
    await composer.getByTestId('attach-input').setInputFiles({ name: 'scan.png', mimeType: 'image/png', buffer: png(300_000) });
    await page.getByRole('img', { name: 'Preview of scan.png' }).waitFor();
    await page.getByLabel('Caption (optional)').fill('Foto van de verwijzing');
    await screenshot(page, 'desk-02-attachment-preview');
    await expectAxeClean('attachment preview');
    await page.getByRole('button', { name: 'Send file' }).click();
    await page.getByTestId('attachment').waitFor({ state: 'detached' });
    await composer.getByTestId('attach-input').setInputFiles({ name: 'uitslag.pdf', mimeType: 'application/pdf', buffer: PDF });
    await page.getByLabel('Caption (optional)').fill('Uw uitslag');
    await page.getByRole('button', { name: 'Send file' }).click();
    await desk.stack.sim.waitForSends(2);
    const [image, pdf] = desk.stack.sim.sends;
    expect(image!.type).toBe('image');
    expect(JSON.stringify(image!.request)).toContain('Foto van de verwijzing');
    expect(pdf!.type).toBe('document');
    expect(JSON.stringify(pdf!.request)).toContain('Uw uitslag');
    for (const s of [image!, pdf!]) for (const status of ['sent', 'delivered'] as const) await desk.stack.sim.postStatus(s.wamid, status);
    await expect.poll(() => page.locator('.msg.out[data-status="delivered"]').count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    expect(readdirSync(join(desk.stack.core.dataDir, 'media'))).toHaveLength(1);
    const shown = page.locator('.msg.out img.media-image[alt="Foto van de verwijzing"]');
    await expect.poll(() => shown.evaluate((el) => { const img = el as unknown as { complete: boolean; naturalWidth: number }; return img.complete ? img.naturalWidth : 0; }), { timeout: 20_000 }).toBe(16);
    await screenshot(page, 'desk-03-attachments-delivered');
  });

  it('refuses a 5,000-character paste whole, and sends it in parts that add up to exactly what was typed', async () => {
    const text = `${'Beste mevrouw, hierbij de uitleg over uw behandeling. '.repeat(90)}Einde.`.slice(0, 5000);
    const box = page.getByRole('textbox', { name: 'Message', exact: true });
    await box.fill(text);
    expect(await box.inputValue()).toBe(text);
    await page.getByTestId('too-long').waitFor();
    expect(await page.getByRole('button', { name: 'Send', exact: true }).isDisabled()).toBe(true);
    await screenshot(page, 'desk-04-too-long');
    await expectAxeClean('too long');
    const before = desk.stack.sim.sends.length;
    await page.getByRole('button', { name: 'Send as 2 messages' }).click();
    await desk.stack.sim.waitForSends(before + 2);
    const bodies = desk.stack.sim.sends.slice(before).map((s) => (s.request as { text?: { body: string } }).text?.body ?? '');
    expect(bodies.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
    for (const b of bodies) expect([...b].length).toBeLessThanOrEqual(4096);
  });

  it('finds a patient by name and by number typed in another format, contacts above messages', async () => {
    const search = page.getByRole('searchbox', { name: 'Search names, numbers, notes and messages' });
    await search.fill('06 1234 5678');
    const contacts = page.getByTestId('contact-hits');
    await contacts.waitFor();
    expect(await contacts.textContent()).toContain(LONG_NAME);
    await search.fill('magdalena');
    await page.getByTestId('contact-hits').getByText(LONG_NAME).waitFor();
    await screenshot(page, 'desk-05-search');
    await expectAxeClean('search');
    await search.fill('');
  });

  it('keeps the open conversation in place when it is resolved', async () => {
    await conversation(LONG_NAME).click();
    await page.getByLabel('Conversation status').selectOption('resolved');
    await page.waitForTimeout(1_000);
    expect(await conversation(LONG_NAME).count()).toBe(1);
    expect(await page.getByTestId('thread').getAttribute('aria-label')).toBe(LONG_NAME);
    await conversation('Layla Haddad').click();
    await expect.poll(() => conversation(LONG_NAME).count(), { timeout: 10_000 }).toBe(0);
  });

  it('shows the full name in the header at 1024×700, with the contact panel over the thread', async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.getByRole('button', { name: 'Resolved', exact: true }).click();
    await conversation(LONG_NAME).click();
    const header = page.getByTestId('thread').getByRole('heading', { level: 2 });
    await header.waitFor();
    expect(await header.evaluate((el) => el.scrollWidth <= el.clientWidth + 1 && el.textContent)).toBe(LONG_NAME);
    await page.getByRole('button', { name: 'Contact', exact: false }).first().click();
    const panel = page.locator('#contact-panel');
    await panel.waitFor();
    expect(await panel.evaluate(computedStyle, 'position')).toBe('fixed');
    expect(await page.locator('#contact-name').getAttribute('placeholder')).toBe(LONG_NAME);
    await screenshot(page, 'desk-06-1024x700');
    await expectAxeClean('1024×700 with contact panel');
  });

  it('says so when the patient writes to a resolved conversation and it reopens', async () => {
    await page.locator('#contact-panel').getByRole('button', { name: 'Close' }).click();
    expect(await page.getByLabel('Conversation status').inputValue()).toBe('resolved');
    await desk.stack.sim.postInbound({ from: ANNA, name: LONG_NAME, text: 'Nog een vraag over de uitslag.' });
    await page.getByTestId('reopened').waitFor({ timeout: 20_000 });
    expect(await page.getByTestId('reopened').textContent()).toBe('Reopened: the patient wrote again.');
    expect(await page.getByLabel('Conversation status').inputValue()).toBe('open');
    await screenshot(page, 'desk-07-reopened');
    await expectAxeClean('reopened');
  });

  it("reacts to the patient's message from the bubble's own React button (keyboard), changes it and removes it", async () => {
    const JOOST = '31687654321';
    const { wamid } = await desk.stack.sim.postInbound({ from: JOOST, name: 'Joost de Vries', text: 'Dank u wel voor de snelle hulp!' });
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await conversation('Joost de Vries').click();
    const bubble = page.locator('.msg.in', { hasText: 'Dank u wel voor de snelle hulp!' });
    const reactions = () => desk.stack.sim.sends.filter((x) => x.type === 'reaction');
    const before = reactions().length;

    // Keyboard only: the button is there without hovering, Enter opens the row with focus on 👍.
    const button = bubble.getByRole('button', { name: /^React: / });
    await button.focus();
    await page.keyboard.press('Enter');
    const picker = bubble.getByRole('group', { name: 'Choose a reaction' });
    await picker.waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } } }).document.activeElement.getAttribute('aria-label'))).toBe('React with 👍');
    await screenshot(page, 'desk-08-reaction-picker');
    await expectAxeClean('reaction picker');
    await page.keyboard.press('Enter');
    await expect.poll(() => reactions().length, { timeout: 20_000 }).toBe(before + 1);
    expect(reactions().at(-1)!.request).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: JOOST,
      type: 'reaction',
      reaction: { message_id: wamid, emoji: '👍' },
      biz_opaque_callback_data: expect.stringMatching(/^ci-outbox:/),
    });
    const mine = bubble.getByTestId('clinic-reaction');
    await expect.poll(() => mine.getAttribute('data-status'), { timeout: 20_000 }).toBe('sent');
    expect(await mine.textContent()).toBe('👍');
    // Focus came back to the React button, so Escape and the row do not strand a keyboard user.
    expect(await button.evaluate((el) => el === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement)).toBe(true);
    await screenshot(page, 'desk-09-reaction-sent');
    await expectAxeClean('reaction on the bubble');

    // A change replaces it (one reaction per message), and "Remove reaction" takes it away.
    await button.click();
    await picker.getByRole('button', { name: 'React with ❤️' }).click();
    await expect.poll(() => reactions().length, { timeout: 20_000 }).toBe(before + 2);
    expect((reactions().at(-1)!.request as { reaction: unknown }).reaction).toEqual({ message_id: wamid, emoji: '❤️' });
    await expect.poll(() => mine.textContent(), { timeout: 20_000 }).toBe('❤️');
    expect(await bubble.getByTestId('clinic-reaction').count()).toBe(1);
    await button.click();
    expect(await picker.getByRole('button', { name: 'React with ❤️' }).getAttribute('aria-pressed')).toBe('true');
    await picker.getByRole('button', { name: 'Remove reaction' }).click();
    await expect.poll(() => reactions().length, { timeout: 20_000 }).toBe(before + 3);
    expect((reactions().at(-1)!.request as { reaction: unknown }).reaction).toEqual({ message_id: wamid, emoji: '' });
    await expect.poll(() => bubble.getByTestId('clinic-reaction').count(), { timeout: 20_000 }).toBe(0);
    // The clinic's own messages offer no React button (WhatsApp only takes reactions to the patient's), but keep Reply.
    await page.getByRole('textbox', { name: 'Message', exact: true }).fill('Graag gedaan!');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const reply = page.locator('.msg.out', { hasText: 'Graag gedaan!' });
    await reply.waitFor({ timeout: 20_000 });
    expect(await reply.getByRole('button', { name: /^Reply: / }).count()).toBe(1);
    expect(await reply.getByRole('button', { name: /^React: / }).count()).toBe(0);
  });
});
