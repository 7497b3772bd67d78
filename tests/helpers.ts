import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { RelayProcess } from '../relay/testing/relayProcess';
import { createCore, type CoreHandle, type CreateCoreOptions } from '../electron/core/createCore';
import type { GraphSimulator, SimTemplate } from '../electron/core/testing/graphSimulator';
import { rpc, signIn, TEST_HASH_COST, IT_ADMIN, type Person } from '../electron/core/testing/users';
import type { Connection, CoreEventListener } from '../electron/core/types';
import type { RpcMethod, RpcOutput, RpcResult } from '../shared/rpc';

export const ADMIN: Person = IT_ADMIN;
export const RECEPTION: Person = { username: 'anna', displayName: 'Anna', roles: ['receptionist'] };
export const AUDITOR: Person = { username: 'inge', displayName: 'Inge (DPO)', roles: ['auditor'] };

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

const connections = new WeakMap<CoreHandle, Map<string, Promise<Connection>>>();

/** A connection signed in as this person (created once per core, as an admin would). */
export function as(core: CoreHandle, person: Person): Promise<Connection> {
  const byUser = connections.get(core) ?? new Map<string, Promise<Connection>>();
  connections.set(core, byUser);
  let connection = byUser.get(person.username);
  if (!connection) {
    connection = signIn(core, person);
    byUser.set(person.username, connection);
  }
  return connection;
}

/** The raw result of a call as this person, for tests that expect a refusal. */
export async function dispatchAs(core: CoreHandle, person: Person, method: string, params: unknown = {}): Promise<RpcResult<unknown>> {
  return (await as(core, person)).dispatch(method, params);
}

/** Push events as a signed-in window of this person sees them; returns the unsubscribe function. */
export async function listen(core: CoreHandle, person: Person, listener: CoreEventListener): Promise<() => void> {
  return (await as(core, person)).on(listener);
}

/** Calls an RPC method as this person and unwraps the result, failing the test with the error code otherwise. */
export async function call<M extends RpcMethod>(core: CoreHandle, person: Person, method: M, params: unknown = {}): Promise<RpcOutput<M>> {
  return rpc(await as(core, person), method, params);
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
  const core = await createCore({ logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' }, passwordHashCost: TEST_HASH_COST, ...options, dataDir });
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
