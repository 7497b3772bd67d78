/**
 * The Ed25519 release keys (raw public key, base64) whose signature a release manifest must carry.
 * Two while a key rotates: the new one is pinned one release before it starts signing.
 * The private key is kept offline by the release manager (`npm run release -- keygen`).
 */
export const RELEASE_PUBLIC_KEYS: readonly string[] = ['9SpsCkjcwQ02MtePwPv1n7S92/7mRmY/ylqn/l2kedg='];
