/**
 * The whole product for browser tests, the demo and the benchmark: the real relay (child process),
 * the Graph API simulator, a real core (SQLCipher + OS keychain) and the web harness serving the
 * built renderer, plus a headless Chromium with a fresh profile.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import pino from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import type { HashCost } from '../../electron/core/accounts/passwords';
import { restartable } from '../../electron/core/backup/restartable';
import { createCore, type CoreHandle, type CreateCoreOptions } from '../../electron/core/createCore';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../../electron/core/testing/graphSimulator';
import { adminConnection, IT_ADMIN, rpc, signIn, TEST_HASH_COST, TEST_PASSWORD, type Person } from '../../electron/core/testing/users';
import { createWebHarness, type WebHarness } from '../../electron/core/testing/webHarness';
import type { Connection } from '../../electron/core/types';
import { RelayProcess } from '../../relay/testing/relayProcess';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const PHONE_NUMBER_ID = '110000000000001';
export const WABA_ID = '220000000000001';
export const TENANT_ID = 'clinic-demo';

export const TEMPLATES: SimTemplate[] = [
  {
    name: 'appointment_reminder',
    language: 'en',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [
      {
        type: 'BODY',
        text: 'Hello {{1}}, this is a reminder of your appointment on {{2}}. Reply to this message if you need to change it.',
        example: { body_text: [['Anna', 'Thursday 14:30']] },
      },
    ],
  },
  {
    name: 'afspraak_herinnering',
    language: 'nl',
    status: 'APPROVED',
    category: 'UTILITY',
    components: [{ type: 'BODY', text: 'Beste {{1}}, dit is een herinnering aan uw afspraak op {{2}}.' }],
  },
  { name: 'promo_draft', language: 'en', status: 'PENDING', category: 'MARKETING', components: [{ type: 'BODY', text: 'Not approved yet' }] },
];

/** Builds the renderer with vite into `outDir` (the same config electron-vite uses for the app). */
export async function buildRenderer(outDir: string): Promise<string> {
  await build({
    configFile: false,
    root: join(ROOT, 'renderer'),
    base: './',
    logLevel: 'error',
    plugins: [react()],
    build: { outDir, emptyOutDir: true, reportCompressedSize: false, chunkSizeWarningLimit: 4096 },
  });
  return outDir;
}

export interface Stack {
  relay: RelayProcess;
  sim: GraphSimulator;
  /** The core running now (a same-computer restore replaces it). */
  readonly core: CoreHandle;
  harness: WebHarness;
  /** The harness URL with the token in its fragment. */
  url: string;
  accessToken: string;
  workDir: string;
  enrolmentCode(): Promise<string>;
  close(): Promise<void>;
}

export interface StackOptions {
  rendererDir: string;
  /** Quiet by default; the demo passes a real logger. */
  logger?: pino.Logger;
  relayEnv?: Record<string, string>;
  /** An existing core data dir (the benchmark's generated clinic). */
  dataDir?: string;
  /** Let the simulator post sent/delivered/read for every reply by itself (the demo). */
  autoStatuses?: boolean;
  /** argon2id's cost: the product's default unless a test that is not about hashing lowers it. */
  passwordHashCost?: HashCost;
  /** A managed policy file for the core (none by default: the machine's own is never read by tests). */
  policyPath?: string | null;
  /** More core options (the Google simulator's endpoints, CA certificates for event subscribers). */
  core?: Partial<CreateCoreOptions>;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const workDir = mkdtempSync(join(tmpdir(), 'clinic-ui-'));
  const relay = await RelayProcess.start({ env: { RELAY_HEARTBEAT_MS: '1000', ...opts.relayEnv } });
  await relay.createTenant({ tenantId: TENANT_ID, phoneNumberIds: [PHONE_NUMBER_ID], label: 'Demo clinic' });
  const accessToken = `EAAG${randomBytes(30).toString('base64url')}`;
  const sim = createGraphSimulator({
    accessToken,
    phoneNumberId: PHONE_NUMBER_ID,
    displayPhoneNumber: '31201234567',
    wabaId: WABA_ID,
    appSecret: relay.appSecret,
    webhookUrl: `${relay.url}/webhooks/whatsapp`,
    templates: TEMPLATES,
    autoStatuses: opts.autoStatuses ? { afterMs: 1_500, statuses: ['sent', 'delivered', 'read'] } : false,
    logger,
  });
  await sim.listen(0);
  const dataDir = opts.dataDir ?? join(workDir, 'core');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const options: CreateCoreOptions = { dataDir, logger, graph: { baseUrl: sim.url }, policyPath: opts.policyPath ?? null, ...(opts.passwordHashCost ? { passwordHashCost: opts.passwordHashCost } : {}), ...opts.core };
  // The window's core as the app has it (startCore's restartable path): a same-computer restore
  // reopens it in place and the page's connection reattaches.
  const windowCore = restartable(options, await createCore(options), createCore);
  const harness = createWebHarness({ core: windowCore, rendererDir: opts.rendererDir, logger });
  const url = await harness.listen(0);
  return {
    relay,
    sim,
    get core() {
      return windowCore.current();
    },
    harness,
    url,
    accessToken,
    workDir,
    enrolmentCode: () => relay.issueEnrolmentCode(TENANT_ID),
    async close() {
      await harness.close().catch(() => {});
      await windowCore.close().catch(() => {});
      await sim.close().catch(() => {});
      await relay.stop().catch(() => {});
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** CSP violations the page reported (must stay empty). */
  cspViolations(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Debian's Chromium, headless, with a fresh profile that is removed afterwards. `clock` installs
 * Playwright's fake clock before the page loads, so a test can move time on (the desk's idle lock).
 */
export async function openBrowser(url: string, opts: { locale?: string; clock?: boolean } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'clinic-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    viewport: { width: 1280, height: 800 },
    locale: opts.locale ?? 'en-GB',
    timezoneId: 'Europe/Amsterdam',
  });
  // Init scripts run before the page's own and are not subject to its CSP: a safe place to listen.
  await context.addInitScript({
    content: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' at ' + (e.sourceFile || '(evaluated)') + ':' + e.lineNumber));`,
  });
  if (opts.clock) await context.clock.install();
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  return {
    context,
    page,
    cspViolations: () => page.evaluate<string[]>('window.__csp'),
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core in the page (evaluated over the DevTools protocol, so the strict CSP stays on). */
export async function runAxe(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  // A string, because this runs in the page (DOM types) while this file is typed for Node.
  return page.evaluate<AxeViolation[]>(`(async () => {
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  })()`);
}

export const SCREENSHOT_DIR = join(ROOT, 'test-results', 'screenshots');

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/** The people of the browser tests' clinic (created by the first admin, each with `TEST_PASSWORD`). */
export const RECEPTIONIST: Person = { username: 'sanne', displayName: 'Sanne Visser', roles: ['receptionist'] };
export const AUDITOR: Person = { username: 'auditor', displayName: 'Ada Auditor', roles: ['auditor'] };
export { IT_ADMIN, TEST_PASSWORD, type Person };

/** One browser test file's desk: the built renderer, the whole stack, and Chromium open on it. */
export interface Desk {
  stack: Stack;
  browser: Browser;
  page: Page;
  rendererDir: string;
  /** An RPC call as the IT admin (from a connection of its own), failing the test with the error code otherwise. */
  admin(method: string, params: unknown): Promise<unknown>;
  /** A connection of the test's own, signed in as the person (created by the admin on first use). */
  as(person: Person): Promise<Connection>;
  /** Signs the page in through the real sign-in form (which must be showing). */
  signInAs(person: Person, password?: string): Promise<void>;
  /** Locks the page's desk, presses "Switch user" and signs in as the person. */
  switchTo(person: Person): Promise<void>;
  close(): Promise<void>;
}

export interface DeskOptions {
  /** Pair and configure the core first, as the first-run wizard would leave it (`appSecret` for the WhatsApp step). */
  setUp?: { appSecret?: string };
  /** Create the first admin from the test (default); false leaves it to the wizard's first step. */
  firstAdmin?: boolean;
  /** The users the tests need, created by the admin before the page opens. */
  people?: Person[];
  /** Install Playwright's fake clock in the page before it loads. */
  clock?: boolean;
  /** A managed policy file the core reads at start. */
  policyPath?: string;
  /** More core options (the Google simulator's endpoints, CA certificates for event subscribers). */
  core?: Partial<CreateCoreOptions>;
}

/**
 * Builds the renderer, starts the stack and opens Chromium. The core is real; passwords are hashed
 * at `TEST_HASH_COST` because these tests are about screens, not about sign-in timing.
 */
export async function openDesk(opts: DeskOptions = {}): Promise<Desk> {
  const rendererDir = mkdtempSync(join(tmpdir(), 'clinic-renderer-'));
  await buildRenderer(rendererDir);
  const stack = await startStack({ rendererDir, passwordHashCost: TEST_HASH_COST, policyPath: opts.policyPath ?? null, ...(opts.core ? { core: opts.core } : {}) });
  const admin = async (method: string, params: unknown): Promise<unknown> => rpc(await adminConnection(stack.core), method as never, params);
  const as = (person: Person): Promise<Connection> => signIn(stack.core, person);
  if (opts.firstAdmin !== false) await adminConnection(stack.core);
  if (opts.setUp) {
    await admin('setup.pair', { relayUrl: stack.relay.url, code: await stack.enrolmentCode() });
    await admin('setup.whatsapp', { wabaId: WABA_ID, accessToken: stack.accessToken, graphBaseUrl: stack.sim.url, ...opts.setUp });
    const { createdAt } = (await admin('recovery.create', {})) as { createdAt: number };
    await admin('recovery.confirm', { createdAt });
  }
  for (const person of opts.people ?? []) await as(person);
  const browser = await openBrowser(stack.url, { clock: opts.clock ?? false });
  const page = browser.page;
  const signInAs = async (person: Person, password = TEST_PASSWORD): Promise<void> => {
    const form = page.getByTestId('sign-in');
    await form.waitFor({ timeout: 15_000 });
    await form.getByLabel('Username').fill(person.username);
    await form.getByLabel('Password', { exact: true }).fill(password);
    await form.getByRole('button', { name: 'Sign in', exact: true }).click();
    await form.waitFor({ state: 'detached', timeout: 15_000 });
  };
  return {
    stack,
    browser,
    page,
    rendererDir,
    admin,
    as,
    signInAs,
    async switchTo(person) {
      await page.getByRole('button', { name: 'Lock', exact: true }).click();
      await page.getByTestId('lock-screen').getByRole('button', { name: 'Switch user' }).click();
      await signInAs(person);
    },
    async close() {
      await browser.close();
      await stack.close();
      rmSync(rendererDir, { recursive: true, force: true });
    },
  };
}
