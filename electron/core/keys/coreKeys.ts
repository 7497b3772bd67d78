import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { CodedError } from '../../../shared/errors';
import { DATABASE_KEY_BYTES } from '../db/open';
import { keychainAccounts } from './accounts';
import type { SecretStore } from './secretStore';

export interface DeviceKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The raw 32-byte public key, base64url without padding (the shape of `shared/enrolment.ts`). */
  publicKeyRaw: string;
}

export interface CoreKeys {
  installationId: string;
  /** Which keychain backend holds them. */
  backend: string;
  /** Raw SQLCipher key. Keep it in memory only; never log it. */
  databaseKey: Buffer;
  signing: DeviceKeyPair;
  encryption: DeviceKeyPair;
  /** True when this call generated the database key (first run): the database must be new too. */
  created: boolean;
}

/** Raw public key bytes of an Ed25519/X25519 key: the last 32 bytes of its SPKI DER. */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32);
}

function pairFromPkcs8(b64: string, account: string): DeviceKeyPair {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(b64, 'base64url'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new CodedError('INTERNAL', `The keychain entry ${account} does not hold a valid key.`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyRaw: rawPublicKey(publicKey).toString('base64url') };
}

async function loadOrCreatePair(store: SecretStore, account: string, kind: 'ed25519' | 'x25519'): Promise<DeviceKeyPair> {
  const stored = await store.get(account);
  if (stored) {
    const pair = pairFromPkcs8(stored, account);
    if (pair.privateKey.asymmetricKeyType !== kind) {
      throw new CodedError('INTERNAL', `The keychain entry ${account} holds a ${pair.privateKey.asymmetricKeyType} key, expected ${kind}.`);
    }
    return pair;
  }
  const { privateKey } = kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
  const der = privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64url');
  await store.set(account, der);
  return pairFromPkcs8(der, account);
}

/**
 * Reads the installation's keys from the keychain, generating any that are missing (first run).
 * The database key is 32 random bytes stored as hex; device keys as PKCS#8 DER, base64url.
 */
export async function loadOrCreateCoreKeys(
  store: SecretStore,
  installationId: string,
  options: { databaseExists: boolean; dataDir: string },
): Promise<CoreKeys> {
  const accounts = keychainAccounts(installationId);
  let created = false;
  let hex = await store.get(accounts.databaseKey);
  if (hex === null && options.databaseExists) {
    // Never make a new key for existing data: it could not open it, and writing it would hide the
    // real problem (a keychain that was lost, or a data folder moved to new hardware).
    throw new CodedError(
      'RECOVERY_REQUIRED',
      `This computer's keychain has no database key for installation ${installationId}, but its database exists in ${options.dataDir}. ` +
        "If the data came from another computer, an IT admin restores access with the recovery key printed at setup, in the app's window " +
        '(or with --recover on the headless core). Nothing was changed.',
    );
  }
  if (hex === null) {
    hex = randomBytes(DATABASE_KEY_BYTES).toString('hex');
    await store.set(accounts.databaseKey, hex);
    // Read back: some keychains silently truncate or refuse; a key we cannot read again would
    // lock the clinic out of its own data.
    if ((await store.get(accounts.databaseKey)) !== hex) {
      throw new CodedError('KEYCHAIN_UNAVAILABLE', 'The keychain did not keep the database key it was given; refusing to create a database.');
    }
    created = true;
  }
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CodedError('DATABASE_LOCKED', `The keychain entry ${accounts.databaseKey} does not hold a 32-byte hex key.`);
  }
  const signing = await loadOrCreatePair(store, accounts.deviceSigningKey, 'ed25519');
  const encryption = await loadOrCreatePair(store, accounts.deviceEncryptionKey, 'x25519');
  return { installationId, backend: store.backend, databaseKey: Buffer.from(hex, 'hex'), signing, encryption, created };
}

/** The database key only, for tools that open the store without the device keys. */
export async function readDatabaseKey(store: SecretStore, installationId: string): Promise<Buffer | null> {
  const hex = await store.get(keychainAccounts(installationId).databaseKey);
  return hex === null ? null : Buffer.from(hex, 'hex');
}
