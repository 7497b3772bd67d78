// `npm run release -- keygen --out FILE`: makes the Ed25519 release key (kept offline, never in the repo).
// `npm run release -- sign --key FILE --dir FOLDER`: signs each release manifest in FOLDER
//   (latest*.yml, early*.yml) into `<manifest>.sig`, which the app checks against its pinned key.
// `npm run release -- verify --dir FOLDER [--public-key BASE64]`: checks them (default: the pinned keys).
// `npm run release -- check-key`: fails while this build pins no usable release key (electron-builder
//   runs it before packaging, through build/releaseKeyGuard.cjs). The key ceremony: docs/release.md.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { verifyManifest } from '../electron/main/updates/manifest';
import { RELEASE_PUBLIC_KEYS, releaseKeyProblem } from '../electron/main/updates/releaseKey';

const REPO = resolve(import.meta.dirname, '..');
export const MANIFEST_PATTERN = /^(latest|early)(-linux|-mac)?\.yml$/;

/** The release key must not live in the repository (nor anywhere under it). */
export function isInsideRepo(path: string, repo = REPO): boolean {
  // Judge by the real path of the nearest folder that exists, so a symlink cannot hide the repo.
  let dir = resolve(path);
  let rest = '';
  while (!existsSync(dir) && dirname(dir) !== dir) {
    rest = join(dir.slice(dirname(dir).length + 1), rest);
    dir = dirname(dir);
  }
  const rel = relative(realpathSync(repo), join(realpathSync(dir), rest));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export function publicKeyRawBase64(privatePem: string): string {
  const der = createPublicKey(createPrivateKey(privatePem)).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

const PIN_FILE = 'electron/main/updates/releaseKey.ts';

/**
 * Why a release cannot be built or signed with these pinned keys (and this private key), in words
 * the release manager can act on; null when it can. A release signed by a key the build does not
 * pin, or a build that pins none, is one no installed desk would ever accept an update from.
 */
export function releaseRefusal(pinned: readonly string[], privatePem?: string): string | null {
  const problem = releaseKeyProblem(pinned);
  if (problem?.code === 'NO_RELEASE_KEY') {
    return `no release key is pinned in this build (RELEASE_PUBLIC_KEYS in ${PIN_FILE} is empty), so no desk could verify its updates. Run \`npm run release -- keygen --out FILE\` with FILE on the offline release medium (never in the repository), put the public key it prints into RELEASE_PUBLIC_KEYS, commit it, and build again.`;
  }
  if (problem) return `pinned release key number ${problem.index + 1} in ${PIN_FILE} is ${problem.code === 'RELEASE_KEY_INVALID' ? 'not a 32-byte Ed25519 public key in base64' : 'listed twice'}; fix the list and build again.`;
  if (privatePem !== undefined) {
    const mine = publicKeyRawBase64(privatePem);
    if (!pinned.includes(mine)) return `the key in this file (public key ${mine}) is not pinned in this build (${PIN_FILE}); desks would refuse what it signs. Sign with a pinned key, or pin this one a release before it starts signing.`;
  }
  return null;
}

export function signManifests(dir: string, privatePem: string): string[] {
  const key = createPrivateKey(privatePem);
  const signed: string[] = [];
  for (const name of readdirSync(dir).filter((n) => MANIFEST_PATTERN.test(n)).sort()) {
    const signature = sign(null, readFileSync(join(dir, name)), key).toString('base64');
    writeFileSync(join(dir, `${name}.sig`), `${signature}\n`);
    signed.push(name);
  }
  return signed;
}

export function verifyManifests(dir: string, publicKeys: readonly string[]): { name: string; result: string }[] {
  return readdirSync(dir)
    .filter((n) => MANIFEST_PATTERN.test(n))
    .sort()
    .map((name) => {
      const sigFile = join(dir, `${name}.sig`);
      const check = verifyManifest({ bytes: readFileSync(join(dir, name)), signature: existsSync(sigFile) ? readFileSync(sigFile, 'utf8') : null, publicKeys });
      return { name, result: check.ok ? `ok ${check.manifest.version}` : check.code };
    });
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { out: { type: 'string' }, key: { type: 'string' }, dir: { type: 'string' }, 'public-key': { type: 'string' } },
  });
  const fail = (message: string): never => {
    process.stderr.write(`release: ${message}\n`);
    process.exit(2);
  };
  const command = positionals[0];
  if (command === 'keygen') {
    const out = values.out ?? fail('keygen needs --out FILE (outside the repository)');
    if (isInsideRepo(out)) fail('the release key must be kept outside the repository');
    if (existsSync(out)) fail(`${out} exists; refusing to overwrite a release key`);
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(out, pem, { mode: 0o600, flag: 'wx' });
    process.stdout.write(`Release key written to ${out} (keep it offline).\nPublic key to pin in electron/main/updates/releaseKey.ts:\n\n    ${publicKeyRawBase64(pem)}\n`);
  } else if (command === 'sign') {
    const keyFile = values.key ?? fail('sign needs --key FILE');
    const dir = values.dir ?? fail('sign needs --dir FOLDER');
    if (isInsideRepo(keyFile)) fail('the release key must be kept outside the repository');
    const pem = readFileSync(keyFile, 'utf8');
    const refusal = releaseRefusal(RELEASE_PUBLIC_KEYS, pem);
    if (refusal) fail(refusal);
    const signed = signManifests(dir, pem);
    if (signed.length === 0) fail(`no latest*.yml or early*.yml in ${dir}`);
    process.stdout.write(`signed ${signed.join(', ')} with key ${publicKeyRawBase64(readFileSync(keyFile, 'utf8'))}\n`);
  } else if (command === 'check-key') {
    const refusal = releaseRefusal(RELEASE_PUBLIC_KEYS);
    if (refusal) fail(refusal);
    process.stdout.write(`release keys pinned: ${RELEASE_PUBLIC_KEYS.join(', ')}\n`);
  } else if (command === 'verify') {
    const dir = values.dir ?? fail('verify needs --dir FOLDER');
    const refusal = values['public-key'] ? null : releaseRefusal(RELEASE_PUBLIC_KEYS);
    if (refusal) fail(`${refusal} (or name the key to check against with --public-key)`);
    const results = verifyManifests(dir, values['public-key'] ? [values['public-key']] : RELEASE_PUBLIC_KEYS);
    for (const r of results) process.stdout.write(`${r.name}: ${r.result}\n`);
    process.exit(results.length > 0 && results.every((r) => r.result.startsWith('ok')) ? 0 : 3);
  } else {
    fail('usage: release keygen --out FILE | sign --key FILE --dir FOLDER | verify --dir FOLDER [--public-key BASE64] | check-key');
  }
}

if (process.argv[1] === import.meta.filename) main();
