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
import { createCore, type CoreHandle } from '../../electron/core/createCore';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../../electron/core/testing/graphSimulator';
import { createWebHarness, type WebHarness } from '../../electron/core/testing/webHarness';
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
    components: [{ type: 'BODY', text: 'Hello {{1}}, this is a reminder of your appointment on {{2}}. Reply to this message if you need to change it.' }],
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
  core: CoreHandle;
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
  mkdirSync(dataDir, { recursive: true });
  const core = await createCore({ dataDir, logger, graph: { baseUrl: sim.url } });
  const harness = createWebHarness({ core, rendererDir: opts.rendererDir, logger });
  const url = await harness.listen(0);
  return {
    relay,
    sim,
    core,
    harness,
    url,
    accessToken,
    workDir,
    enrolmentCode: () => relay.issueEnrolmentCode(TENANT_ID),
    async close() {
      await harness.close().catch(() => {});
      await core.close().catch(() => {});
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

/** Debian's Chromium, headless, with a fresh profile that is removed afterwards. */
export async function openBrowser(url: string, opts: { locale?: string } = {}): Promise<Browser> {
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

const DESK_ADMIN = { userId: 'test', role: 'admin', displayName: 'Test', origin: 'test' } as const;

/** One browser test file's desk: the built renderer, the whole stack, and Chromium open on it. */
export interface Desk {
  stack: Stack;
  browser: Browser;
  page: Page;
  rendererDir: string;
  /** An RPC call as the IT admin, failing the test with the error code otherwise. */
  admin(method: string, params: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Builds the renderer, starts the stack and opens Chromium. With `setUp`, the core is paired and
 * configured first, as the first-run wizard would leave it (`appSecret` for the WhatsApp step).
 */
export async function openDesk(opts: { setUp?: { appSecret?: string } } = {}): Promise<Desk> {
  const rendererDir = mkdtempSync(join(tmpdir(), 'clinic-renderer-'));
  await buildRenderer(rendererDir);
  const stack = await startStack({ rendererDir });
  const admin = async (method: string, params: unknown): Promise<unknown> => {
    const result = await stack.core.dispatch(DESK_ADMIN, method, params);
    if (!result.ok) throw new Error(`${method}: ${result.error.code} ${result.error.message}`);
    return result.value;
  };
  if (opts.setUp) {
    await admin('setup.pair', { relayUrl: stack.relay.url, code: await stack.enrolmentCode() });
    await admin('setup.whatsapp', { wabaId: WABA_ID, accessToken: stack.accessToken, graphBaseUrl: stack.sim.url, ...opts.setUp });
    await admin('recovery.create', {});
  }
  const browser = await openBrowser(stack.url);
  return {
    stack,
    browser,
    page: browser.page,
    rendererDir,
    admin,
    async close() {
      await browser.close();
      await stack.close();
      rmSync(rendererDir, { recursive: true, force: true });
    },
  };
}
