import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { RelayProcess } from '../relay/testing/relayProcess';
import { createCore, type CoreHandle, type CreateCoreOptions } from '../electron/core/createCore';
import type { GraphSimulator, SimTemplate } from '../electron/core/testing/graphSimulator';
import type { Session } from '../electron/core/types';
import type { RpcMethod, RpcOutput } from '../shared/rpc';

export const ADMIN: Session = { userId: 'it-admin', role: 'admin', displayName: 'IT admin', origin: 'test' };
export const RECEPTION: Session = { userId: 'anna', role: 'receptionist', displayName: 'Anna', origin: 'test' };

/** Polls until `check` returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A throwaway data folder for one core. */
export function tempDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-core-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const quietLogger = () => pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });

/** Calls an RPC method and unwraps the result, failing the test with the error code otherwise. */
export async function call<M extends RpcMethod>(core: CoreHandle, session: Session, method: M, params: unknown = {}): Promise<RpcOutput<M>> {
  const result = await core.dispatch(session, method, params);
  if (!result.ok) throw new Error(`${method} failed: ${result.error.code}: ${result.error.message}`);
  return result.value as RpcOutput<M>;
}

/** A real core (real keychain, real SQLCipher file) paired with the given relay's tenant. */
export async function startPairedCore(
  relay: RelayProcess,
  tenantId: string,
  options: Partial<CreateCoreOptions> & { dataDir?: string } = {},
): Promise<CoreHandle> {
  // A folder made here is removed when the core closes; one passed in belongs to the caller.
  const owned = options.dataDir ? null : tempDataDir();
  const dataDir = options.dataDir ?? owned!.dir;
  const core = await createCore({ logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' }, ...options, dataDir });
  const code = await relay.issueEnrolmentCode(tenantId);
  await call(core, ADMIN, 'setup.pair', { relayUrl: relay.url, code });
  await waitFor('relay link up', () => core.relayStatus().state === 'connected');
  if (!owned) return core;
  return {
    ...core,
    async close() {
      await core.close();
      owned.remove();
    },
  };
}

/**
 * A real relay with one tenant, and a data folder already paired with it (the core that paired is
 * closed again), for tests that start their own cores later — in this process or as children.
 */
export async function relayWithPairedFolder(tenantId: string, phoneNumberIds: string[]): Promise<{
  relay: RelayProcess;
  dataDir: string;
  stop(): Promise<void>;
}> {
  const { RelayProcess: Relay } = await import('../relay/testing/relayProcess');
  const relay = await Relay.start();
  const data = tempDataDir();
  await relay.createTenant({ tenantId, phoneNumberIds });
  const core = await startPairedCore(relay, tenantId, { dataDir: data.dir });
  await core.close();
  return {
    relay,
    dataDir: data.dir,
    async stop() {
      await relay.stop();
      data.remove();
    },
  };
}

/**
 * One clinic's whole messaging loop with every part real except Meta: a relay with the tenant, the
 * Graph API simulator posting signed webhooks to it, and a core paired and set up for WhatsApp.
 */
export async function startClinicLoop(opts: { tenantId: string; phoneNumberId: string; wabaId: string; accessToken: string; templates: SimTemplate[] }): Promise<{
  relay: RelayProcess;
  sim: GraphSimulator;
  core: CoreHandle;
  stop(): Promise<void>;
}> {
  const { RelayProcess: Relay } = await import('../relay/testing/relayProcess');
  const { createGraphSimulator } = await import('../electron/core/testing/graphSimulator');
  const relay = await Relay.start();
  await relay.createTenant({ tenantId: opts.tenantId, phoneNumberIds: [opts.phoneNumberId] });
  const sim = createGraphSimulator({
    accessToken: opts.accessToken,
    phoneNumberId: opts.phoneNumberId,
    wabaId: opts.wabaId,
    appSecret: relay.appSecret,
    webhookUrl: `${relay.url}/webhooks/whatsapp`,
    templates: opts.templates,
  });
  await sim.listen();
  const core = await startPairedCore(relay, opts.tenantId);
  await call(core, ADMIN, 'setup.whatsapp', { wabaId: opts.wabaId, accessToken: opts.accessToken, graphBaseUrl: sim.url });
  return {
    relay,
    sim,
    core,
    async stop() {
      await core.close();
      await sim.close();
      await relay.stop();
    },
  };
}
