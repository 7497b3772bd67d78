/**
 * The auditor's desk in a real browser against the real core, relay and SQLCipher file: a
 * receptionist reads a patient's conversation, the auditor finds that read by the patient's name,
 * exports the view (the JSON carries its proof), and then sees "Verify the log" catch one entry
 * edited on disk. Run with `node scripts/test.mjs --vitest-only tests/ui/auditor.test.ts`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../electron/core/db/open';
import { readDatabaseKey } from '../../electron/core/keys/coreKeys';
import { createKeytarSecretStore } from '../../electron/core/keys/secretStore';
import { startCore } from '../../electron/core/startCore';
import { createWebHarness } from '../../electron/core/testing/webHarness';
import { AUDITOR, openBrowser, openDesk, RECEPTIONIST, ROOT, runAxe, screenshot, TEST_PASSWORD, type Browser, type Desk, type Person } from './stack';

const PATIENT = { from: '31612345678', name: 'Karl Roth' };
const CLI = join(ROOT, 'electron', 'core', 'audit', 'cli.ts');

let desk: Desk;
let auditor: Browser;
let page: Page;
const downloadsDir = mkdtempSync(join(tmpdir(), 'clinic-audit-downloads-'));
/** The receptionist's read of the patient's thread, as the auditor's screen showed it. */
let readSeq = 0;

/** Signs a window other than the desk's own page in through its sign-in form (desk.signInAs drives only that one). */
async function signInThroughPage(p: Page, person: Person): Promise<void> {
  const form = p.getByTestId('sign-in');
  await form.waitFor({ timeout: 20_000 });
  await form.getByLabel('Username').fill(person.username);
  await form.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
  await form.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** The auditor's only screen opens by itself after sign-in. */
async function openAuditDesk(p: Page): Promise<void> {
  await signInThroughPage(p, AUDITOR);
  await p.getByTestId('audit-screen').waitFor({ timeout: 15_000 });
}

async function expectNoAxeViolations(p: Page, screen: string): Promise<void> {
  const violations = await runAxe(p);
  expect(violations, `axe on ${screen}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

beforeAll(async () => {
  // The people exist as the admin made them; each has set their own password.
  desk = await openDesk({ setUp: {}, people: [RECEPTIONIST, AUDITOR] });
  expect((await desk.stack.sim.postInbound({ ...PATIENT, text: 'Guten Tag, ist mein Befund schon da?' })).status).toBe(200);
}, 180_000);

afterAll(async () => {
  await auditor?.close();
  await desk?.close();
  rmSync(downloadsDir, { recursive: true, force: true });
});

describe("the auditor's desk", () => {
  it("a receptionist opens the patient's conversation", async () => {
    const p = desk.page;
    await desk.signInAs(RECEPTIONIST);
    const conversation = p.locator('.conv-item', { hasText: PATIENT.name });
    await conversation.waitFor({ timeout: 15_000 });
    await conversation.click();
    await p.getByTestId('thread').getByText('ist mein Befund schon da').waitFor();
  });

  it('the auditor finds the patient by name and sees who accessed them', async () => {
    auditor = await openBrowser(desk.stack.url);
    page = auditor.page;
    await openAuditDesk(page);
    await page.getByTestId('audit-entries').waitFor({ timeout: 15_000 });
    await screenshot(page, 'audit-01-desk');

    await page.getByRole('searchbox', { name: 'Find a patient by name' }).fill('roth');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('button', { name: `Show entries for ${PATIENT.name}` }).click();
    expect(await page.getByTestId('picked-patient').textContent()).toContain(PATIENT.name);
    await page.getByRole('button', { name: 'Who accessed this patient' }).click();
    await page.getByRole('heading', { name: `Who accessed ${PATIENT.name}` }).waitFor();

    const reads = page.getByTestId('audit-entries').getByRole('row').filter({ hasText: RECEPTIONIST.displayName }).filter({ hasText: 'messages.list' });
    await reads.first().waitFor({ timeout: 10_000 });
    const text = (await reads.first().textContent()) ?? '';
    expect(text).toContain('receptionist');
    expect(text).toContain('read');
    expect(text).toContain(PATIENT.name);
    // Local time on the row, UTC in its title.
    expect(await reads.first().locator('time').getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    readSeq = Number(await reads.first().getAttribute('data-seq'));
    expect(readSeq).toBeGreaterThan(0);
    // Every row of this report concerns the patient.
    for (const row of await page.getByTestId('audit-entries').locator('[data-seq]').all()) expect(await row.textContent()).toContain(PATIENT.name);
    await screenshot(page, 'audit-02-who-accessed');
    await expectNoAxeViolations(page, 'audit desk');
  });

  it('exports the view as JSON and CSV; the JSON verifies on its own', async () => {
    const downloads: Download[] = [];
    page.on('download', (d) => downloads.push(d));
    await page.getByRole('button', { name: 'Export this view' }).click();
    await expect.poll(() => downloads.length, { timeout: 15_000 }).toBe(2);
    const files = new Map<string, string>();
    for (const d of downloads) {
      const path = join(downloadsDir, d.suggestedFilename());
      await d.saveAs(path);
      files.set(d.suggestedFilename().endsWith('.json') ? 'json' : 'csv', path);
    }
    expect([...files.keys()].sort()).toEqual(['csv', 'json']);
    const json = readFileSync(files.get('json')!, 'utf8');
    const csv = readFileSync(files.get('csv')!, 'utf8');
    expect(json).toContain(RECEPTIONIST.displayName);
    expect(json).toContain(PATIENT.name);
    expect(json).toContain(`${readSeq}`);
    expect(csv).toContain(RECEPTIONIST.displayName);
    expect(csv).toContain(PATIENT.name);
    expect(csv).toContain('messages.list');
    // Never what the patient wrote.
    expect(json).not.toContain('Befund');
    expect(csv).not.toContain('Befund');
    await page.getByRole('status').filter({ hasText: 'Exported' }).waitFor();

    if (existsSync(CLI)) {
      const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'verify-export', files.get('json')!], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(run.status, `verify-export: ${run.stdout}\n${run.stderr}`).toBe(0);
    }
  });

  it('"Verify the log" says intact, then TAMPERED once one entry is edited on disk', async () => {
    await page.getByRole('button', { name: 'Verify the log' }).click();
    const verdict = page.getByTestId('audit-verdict');
    await verdict.waitFor({ timeout: 20_000 });
    expect(await verdict.getAttribute('role')).toBe('status');
    expect(await verdict.textContent()).toContain('The log is intact');
    await screenshot(page, 'audit-03-verified-intact');

    // Someone with the database key edits the receptionist's read to cover their tracks.
    const { stack, rendererDir } = desk;
    const { dataDir, installationId } = stack.core;
    await stack.harness.close();
    await stack.core.close();
    const key = await readDatabaseKey(await createKeytarSecretStore(), installationId);
    const { db } = openDatabase({ path: join(dataDir, 'clinic-inbox.db'), key: key! });
    db.exec('DROP TRIGGER audit_log_append_only_update');
    expect(db.prepare(`UPDATE audit_log SET user_id = 'nobody', display_name = 'Nobody' WHERE seq = ?`).run(readSeq).changes).toBe(1);
    db.close();

    const core = await startCore({ dataDir, logger: pino({ level: 'silent' }), graph: { baseUrl: stack.sim.url } });
    const harness = createWebHarness({ core, rendererDir, logger: pino({ level: 'silent' }) });
    try {
      await page.goto(await harness.listen(0));
      await openAuditDesk(page);
      await page.getByRole('button', { name: 'Verify the log' }).click();
      const alert = page.getByRole('alert').filter({ hasText: 'TAMPERED' });
      await alert.waitFor({ timeout: 20_000 });
      expect(await alert.textContent()).toContain(`#${readSeq}`);
      await screenshot(page, 'audit-04-tampered');
      await expectNoAxeViolations(page, 'audit desk (tampered)');
      expect(await auditor.cspViolations()).toEqual([]);
    } finally {
      await harness.close();
      await core.close();
    }
  });
});
