import type { Role, RpcMethod, RpcOutput } from '../../../shared/rpc';
import type { Caller, Connection, Core } from '../types';

/**
 * Signed-in connections for tests, the demo and benchmarks, made the way a person would: the
 * first admin through `auth.createFirstAdmin`, everyone else by that admin (`users.create`, a
 * one-time password), then a sign-in and the user's own new password.
 */
export interface Person {
  username: string;
  displayName: string;
  roles: readonly Role[];
}

export const IT_ADMIN: Person = { username: 'it-admin', displayName: 'IT admin', roles: ['admin'] };
/** Passes the password policy (15+ characters, not a common password, no names in it). */
export const TEST_PASSWORD = 'lantern orchard velvet 42';
const ONE_TIME_PASSWORD = 'temporary harbor gravel 7';

/** A cheap argon2id cost for tests that are not about hashing (the product's default is in passwords.ts). */
export const TEST_HASH_COST = { memoryCost: 1024, timeCost: 1 } as const;

/** Calls a method and unwraps the result, failing with the error code otherwise. */
export async function rpc<M extends RpcMethod>(connection: Connection, method: M, params: unknown = {}): Promise<RpcOutput<M>> {
  const result = await connection.dispatch(method, params);
  if (!result.ok) throw new Error(`${method} failed: ${result.error.code}: ${result.error.message}`);
  return result.value as RpcOutput<M>;
}

const adminOf = new WeakMap<Core, Promise<Connection>>();

/** The installation's first admin, signed in (created on first use). */
export function adminConnection(core: Core, origin = 'test'): Promise<Connection> {
  let admin = adminOf.get(core);
  if (!admin) {
    admin = (async () => {
      const connection = core.connect(origin);
      const status = await rpc(connection, 'auth.status');
      if (!status.hasAdmin) {
        await rpc(connection, 'auth.createFirstAdmin', { username: IT_ADMIN.username, displayName: IT_ADMIN.displayName, password: TEST_PASSWORD });
      } else {
        await rpc(connection, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
      }
      return connection;
    })();
    adminOf.set(core, admin);
  }
  return admin;
}

/** Creates the person (unless the installation has them already) and returns a connection signed in as them. */
export async function signIn(core: Core, person: Person, origin = 'test'): Promise<Connection> {
  const admin = await adminConnection(core);
  if (person.username === IT_ADMIN.username && origin === 'test') return admin;
  const connection = core.connect(origin);
  const exists = (await rpc(admin, 'users.list')).some((u) => u.username === person.username);
  if (!exists) {
    await rpc(admin, 'users.create', { username: person.username, displayName: person.displayName, roles: person.roles, password: ONE_TIME_PASSWORD });
    await rpc(connection, 'auth.signIn', { username: person.username, password: ONE_TIME_PASSWORD });
    await rpc(connection, 'auth.changePassword', { newPassword: TEST_PASSWORD });
  } else {
    await rpc(connection, 'auth.signIn', { username: person.username, password: TEST_PASSWORD });
  }
  return connection;
}

/** A caller with a session that is not in any database, for tests of `dispatch` and handlers alone. */
export function testCaller(person: { userId: string; displayName: string; roles: readonly Role[] }, origin = 'test'): Caller {
  return {
    origin,
    session: { id: `s_${person.userId}`, userId: person.userId, username: person.userId, displayName: person.displayName, roles: person.roles, state: 'active', origin },
  };
}
