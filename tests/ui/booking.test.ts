/**
 * Booking in a real browser against the real core, relay and the Google simulator: the admin
 * connects Google Calendar (Google's consent page opens in a new tab, PKCE checked by the
 * simulator, the two narrow scopes), the receptionist books from the conversation, is refused a
 * slot taken meanwhile, moves and cancels; a grant Google revoked shows the admin's banner, and
 * Disconnect revokes at Google. Run with `node scripts/test.mjs --vitest-only tests/ui/booking.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_CALENDAR_SCOPES } from '../../shared/rpc';
import { startGoogleSimulator, SIM_CLIENT_ID, type GoogleSimulator } from '../../electron/core/testing/googleSimulator';
import { IT_ADMIN, openDesk, RECEPTIONIST, screenshot, type Desk } from './stack';

const PATIENT = { from: '31687654321', name: 'Joost de Boer', text: 'Kan ik deze week nog langskomen voor een bloedtest?' };
const ALL_WEEK = [0, 1, 2, 3, 4, 5, 6].map((day) => ({ day, from: '00:00', to: '23:30' }));

let sim: GoogleSimulator;
let desk: Desk;

beforeAll(async () => {
  sim = await startGoogleSimulator();
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST], core: { google: sim.endpoints() } });
  await desk.stack.sim.postInbound(PATIENT);
  const receptionist = await desk.as(RECEPTIONIST);
  for (let i = 0; i < 100; i++) {
    const r = await receptionist.dispatch('inbox.listConversations', {});
    if (r.ok && (r.value as { items: unknown[] }).items.length === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 180_000);

afterAll(async () => {
  await desk?.close();
  await sim?.close();
});

async function connectThroughGoogle(): Promise<void> {
  const { page } = desk;
  const section = page.locator('#section-booking');
  await section.getByLabel('OAuth client ID (Desktop app)').fill(SIM_CLIENT_ID);
  const [consent] = await Promise.all([page.context().waitForEvent('page'), section.getByRole('button', { name: /Connect Google Calendar|Reconnect Google Calendar/ }).click()]);
  await consent.waitForLoadState();
  const requested = await consent.getByRole('list', { name: 'Requested access' }).locator('li').allTextContents();
  expect(requested).toEqual([...GOOGLE_CALENDAR_SCOPES]);
  await consent.getByRole('button', { name: 'Allow' }).click();
  await consent.getByText('Google Calendar is connected').waitFor();
  await consent.close();
  await section.getByTestId('calendar-state').and(page.locator('[data-state="connected"]')).waitFor({ timeout: 15_000 });
}

describe('booking from the conversation', () => {
  it('the admin connects Google Calendar in a new tab, with PKCE and the two narrow scopes', async () => {
    const { page } = desk;
    await desk.signInAs(IT_ADMIN);
    await page.getByRole('navigation').getByRole('button', { name: 'Settings' }).click();
    await page.locator('#section-booking').waitFor();
    await connectThroughGoogle();
    expect(sim.tokenExchanges.filter((t) => t.grantType === 'authorization_code')).toEqual([{ grantType: 'authorization_code', pkceVerified: true, ok: true }]);
    expect(sim.grantedScopes.at(-1)).toEqual([...GOOGLE_CALENDAR_SCOPES]);
    await screenshot(page, 'booking-01-connected');
    await desk.admin('calendar.updateSettings', { calendars: [{ id: 'primary', label: 'Dr. Bakker' }], rules: { slotMinutes: 30, bufferMinutes: 0, timeZone: 'UTC', hours: ALL_WEEK } });
  });

  it('the receptionist books, is refused a slot taken meanwhile, moves and cancels', async () => {
    const { page } = desk;
    await desk.switchTo(RECEPTIONIST);
    await page.locator('.conv-item', { hasText: PATIENT.name }).click();
    await page.getByTestId('thread').getByRole('button', { name: 'Book', exact: true }).click();
    const panel = page.getByTestId('book-panel');
    const slots = panel.locator('button.slot');
    await slots.first().waitFor({ timeout: 15_000 });
    await screenshot(page, 'booking-02-slots');
    const [first, second, third] = (await Promise.all([0, 1, 2].map(async (i) => Number(await slots.nth(i).getAttribute('data-start'))))) as [number, number, number];

    await slots.first().click();
    await panel.getByText(/^Booked for .* \(reference B-[0-9A-Z]{6}\)\.$/).waitFor();
    const offer = panel.getByTestId('booking-offer');
    expect(await offer.getByLabel('Send this message:').inputValue()).toMatch(/Your appointment is booked for .* Your reference is B-/);
    await offer.getByRole('button', { name: 'Send', exact: true }).click();
    await offer.waitFor({ state: 'detached' });
    const [event] = sim.events('primary');
    expect(Date.parse(event!.start)).toBe(first);
    expect(event!.summary).toMatch(/^Appointment JDB · B-/);
    expect(`${event!.summary} ${event!.description}`).not.toMatch(/31687654321|bloedtest|Joost/);
    await expect.poll(() => desk.stack.sim.sends.filter((m) => m.type === 'text').length, { timeout: 15_000 }).toBe(1);

    // Someone books the next slot in Google itself while the list is open.
    sim.addBusy('primary', second, second + 30 * 60_000);
    await panel.locator(`button.slot[data-start="${second}"]`).click();
    await panel.getByRole('alert').getByText('That slot was just taken. Pick another one.').waitFor();
    await screenshot(page, 'booking-03-taken');

    await panel.getByTestId('booking').getByRole('button', { name: 'Move' }).click();
    await panel.locator(`button.slot[data-start="${third}"]`).click();
    await panel.getByText(/^Moved to /).waitFor();
    await panel.getByRole('button', { name: 'Don’t send' }).click();
    expect(Date.parse(sim.events('primary').find((e) => e.id === event!.id)!.start)).toBe(third);

    await panel.getByTestId('booking').getByRole('button', { name: 'Cancel appointment' }).click();
    await panel.getByRole('alertdialog').getByRole('button', { name: 'Yes, cancel it' }).click();
    await panel.getByText('The appointment was cancelled.').waitFor();
    expect(sim.events('primary').find((e) => e.id === event!.id)!.status).toBe('cancelled');
    expect(await panel.getByTestId('booking').getAttribute('data-status')).toBe('cancelled');
  });

  it('a grant Google revoked shows the admin banner; Disconnect revokes at Google', async () => {
    const { page } = desk;
    sim.revokeAllGrants();
    const panel = page.getByTestId('book-panel');
    await panel.getByRole('button', { name: 'Close' }).click();
    await page.getByTestId('thread').getByRole('button', { name: 'Book', exact: true }).click();
    await page.getByTestId('book-panel').getByText('Google Calendar needs to be reconnected by an admin before appointments can be booked.').waitFor({ timeout: 15_000 });

    await desk.switchTo(IT_ADMIN);
    const banner = page.getByTestId('calendar-banner');
    await banner.waitFor({ timeout: 15_000 });
    expect(await banner.textContent()).toContain('booking does not work until an admin reconnects it');
    await screenshot(page, 'booking-04-banner');
    await banner.getByRole('button', { name: 'Reconnect Google Calendar' }).click();
    await connectThroughGoogle();
    expect(await page.getByTestId('calendar-banner').count()).toBe(0);

    const revokedBefore = sim.revocations.length;
    await page.locator('#section-booking').getByRole('button', { name: 'Disconnect' }).click();
    await page.locator('#section-booking').getByTestId('calendar-state').and(page.locator('[data-state="disconnected"]')).waitFor();
    expect(sim.revocations.length).toBe(revokedBefore + 1);
    expect(sim.activeGrants()).toBe(0);
  });
});
