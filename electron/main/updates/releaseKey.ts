/**
 * The Ed25519 release keys (raw 32-byte public keys, base64) whose signature a release manifest
 * must carry: any one of them verifies. A list so a key can rotate: the new key is pinned here one
 * release before it starts signing, and the old one is removed once every desk runs a build that
 * pins the new one (docs/release.md, "The release key").
 *
 * Empty: no release key has been made for this build. Such a build checks no updates at all (its
 * status page says so) and `npm run release` refuses to sign or package a release with it. The
 * private key never enters the repository: `npm run release -- keygen --out FILE` prints the public
 * key to put here.
 */
export const RELEASE_PUBLIC_KEYS: readonly string[] = [];

export type ReleaseKeyProblem = { code: 'NO_RELEASE_KEY' } | { code: 'RELEASE_KEY_INVALID'; index: number } | { code: 'RELEASE_KEY_DUPLICATE'; index: number };

/** Whether a pinned list can verify anything: at least one key, each 32 bytes of base64, none twice. */
export function releaseKeyProblem(keys: readonly string[]): ReleaseKeyProblem | null {
  if (keys.length === 0) return { code: 'NO_RELEASE_KEY' };
  for (const [index, key] of keys.entries()) {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(key) || Buffer.from(key, 'base64').length !== 32) return { code: 'RELEASE_KEY_INVALID', index };
    if (keys.indexOf(key) !== index) return { code: 'RELEASE_KEY_DUPLICATE', index };
  }
  return null;
}

/**
 * What the updater does at start, before any network: a development build checks nothing
 * ('unsupported'); a build without a usable pinned key says updates are off ('no_release_key');
 * without an update server there is nothing to check ('idle'); otherwise it checks.
 */
export function updateGate(input: { packaged: boolean; publicKeys: readonly string[]; url: string | null }): 'unsupported' | 'no_release_key' | 'idle' | 'check' {
  if (!input.packaged) return 'unsupported';
  if (releaseKeyProblem(input.publicKeys)) return 'no_release_key';
  return input.url ? 'check' : 'idle';
}
