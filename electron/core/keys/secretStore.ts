import { CodedError } from '../../../shared/errors';

/** The keychain service name every secret of Clinic Inbox is filed under. */
export const KEYCHAIN_SERVICE = 'clinic-inbox';

/**
 * Where secrets live. Production and the core's tests get the OS keychain through keytar; there is
 * deliberately no file or memory fallback here, so a machine without a keychain refuses to start
 * instead of quietly keeping keys somewhere weaker.
 */
export interface SecretStore {
  /** Which backend holds the secrets, recorded so IT can see it ("libsecret (Secret Service)", …). */
  readonly backend: string;
  get(account: string): Promise<string | null>;
  set(account: string, secret: string): Promise<void>;
  delete(account: string): Promise<boolean>;
}

function backendName(platform: NodeJS.Platform): string {
  if (platform === 'darwin') return 'macOS Keychain';
  if (platform === 'win32') return 'Windows Credential Manager';
  return 'libsecret (Secret Service over D-Bus)';
}

const UNAVAILABLE_HELP =
  'Clinic Inbox keeps its database key in the operating system keychain and will not start without one. ' +
  'On Linux, run it inside a desktop session with a Secret Service provider (GNOME Keyring or KWallet) unlocked ' +
  'and D-Bus available (DBUS_SESSION_BUS_ADDRESS set); on Windows and macOS, sign in as the user who runs the app. ';

function unavailable(detail: string): CodedError {
  // `detail` comes from keytar/libsecret and names the transport problem, never a secret.
  return new CodedError('KEYCHAIN_UNAVAILABLE', `${UNAVAILABLE_HELP}Keychain error: ${detail}`);
}

interface Keytar {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
}

/**
 * Opens the OS keychain and proves it answers (a read of a probe account) before returning, so the
 * core fails at start-up with `KEYCHAIN_UNAVAILABLE` rather than half-way through first-run setup.
 */
export async function createKeytarSecretStore(options: { service?: string } = {}): Promise<SecretStore> {
  const service = options.service ?? KEYCHAIN_SERVICE;
  let keytar: Keytar;
  try {
    const mod = (await import('keytar')) as unknown as { default?: Keytar } & Keytar;
    keytar = mod.default ?? mod;
  } catch (err) {
    throw unavailable(`the keytar module could not be loaded (${err instanceof Error ? err.message : String(err)})`);
  }
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw unavailable(err instanceof Error ? err.message : String(err));
    }
  };
  await guard(() => keytar.getPassword(service, 'probe'));
  return {
    backend: backendName(process.platform),
    get: (account) => guard(() => keytar.getPassword(service, account)),
    set: (account, secret) => guard(() => keytar.setPassword(service, account, secret)),
    delete: (account) => guard(() => keytar.deletePassword(service, account)),
  };
}
