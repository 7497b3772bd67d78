import { createHash, createPublicKey, verify } from 'node:crypto';

/**
 * Our signature on top of the platform's: each release manifest (`latest*.yml`, `early*.yml`) is
 * signed with the offline Ed25519 release key (`npm run release -- sign`) into `<manifest>.sig`
 * (base64 of the 64-byte signature over the manifest's exact bytes). The app pins the public key;
 * a manifest that is unsigned, signed by another key or altered is refused before electron-updater
 * sees it, and the downloaded file must then match the sha512 of the manifest we verified.
 */

export interface ManifestFile {
  url: string;
  sha512: string;
  size: number | null;
}

export interface Manifest {
  version: string;
  files: ManifestFile[];
  path: string | null;
  sha512: string | null;
  releaseDate: string | null;
  /** Absent: everyone. A number 0–100: that share of installations. Anything else: nobody. */
  stagingPercentage: number | 'invalid' | null;
}

export type ManifestCheck = { ok: true; manifest: Manifest } | { ok: false; code: 'MANIFEST_UNSIGNED' | 'MANIFEST_SIGNATURE_INVALID' | 'MANIFEST_MALFORMED' };

/** `MCowBQYDK2VwAyEA` + 32 raw bytes: the SPKI DER of an Ed25519 public key. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function publicKeyFromRaw(rawBase64: string): ReturnType<typeof createPublicKey> {
  const raw = Buffer.from(rawBase64, 'base64');
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

const unquote = (v: string): string => {
  const t = v.trim();
  if ((t.startsWith("'") && t.endsWith("'")) || (t.startsWith('"') && t.endsWith('"'))) return t.slice(1, -1);
  return t;
};

/**
 * Reads the subset of YAML electron-builder writes for a release manifest: top-level scalars and
 * a `files:` list of `- url/sha512/size` maps. Anything else makes it malformed (refused).
 */
export function parseManifest(text: string): Manifest | null {
  const top: Record<string, string> = {};
  const files: Record<string, string>[] = [];
  let inFiles = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const item = /^\s+-\s+(\w+):\s*(.*)$/.exec(line);
    const nested = /^\s{2,}(\w+):\s*(.*)$/.exec(line);
    const scalar = /^(\w+):\s*(.*)$/.exec(line);
    if (inFiles && item) files.push({ [item[1]!]: unquote(item[2]!) });
    else if (inFiles && nested && files.length > 0) files[files.length - 1]![nested[1]!] = unquote(nested[2]!);
    else if (scalar) {
      inFiles = scalar[1] === 'files' && scalar[2]!.trim() === '';
      if (!inFiles) top[scalar[1]!] = unquote(scalar[2]!);
    } else return null;
  }
  const version = top['version'];
  if (!version || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) return null;
  const parsedFiles: ManifestFile[] = [];
  for (const f of files) {
    if (!f['url'] || !f['sha512']) return null;
    parsedFiles.push({ url: f['url'], sha512: f['sha512'], size: f['size'] && /^\d+$/.test(f['size']) ? Number(f['size']) : null });
  }
  if (parsedFiles.length === 0 && !top['path']) return null;
  const pct = top['stagingPercentage'];
  return {
    version,
    files: parsedFiles,
    path: top['path'] ?? null,
    sha512: top['sha512'] ?? null,
    releaseDate: top['releaseDate'] ?? null,
    stagingPercentage: pct === undefined ? null : /^\d+(\.\d+)?$/.test(pct) && Number(pct) <= 100 ? Number(pct) : 'invalid',
  };
}

/** Checks the detached signature against any pinned key (two while the release key rotates), then parses. */
export function verifyManifest(input: { bytes: Uint8Array; signature: string | null; publicKeys: readonly string[] }): ManifestCheck {
  const sig = input.signature?.trim() ?? '';
  if (sig === '') return { ok: false, code: 'MANIFEST_UNSIGNED' };
  const signature = Buffer.from(sig, 'base64');
  if (signature.length !== 64) return { ok: false, code: 'MANIFEST_SIGNATURE_INVALID' };
  const good = input.publicKeys.some((key) => {
    try {
      return verify(null, input.bytes, publicKeyFromRaw(key), signature);
    } catch {
      return false;
    }
  });
  if (!good) return { ok: false, code: 'MANIFEST_SIGNATURE_INVALID' };
  const manifest = parseManifest(Buffer.from(input.bytes).toString('utf8'));
  return manifest ? { ok: true, manifest } : { ok: false, code: 'MANIFEST_MALFORMED' };
}

export function sha512Base64(bytes: Uint8Array): string {
  return createHash('sha512').update(bytes).digest('base64');
}

/** The downloaded file must be one the verified manifest lists, with its sha512. */
export function checkDownloadedFile(manifest: Manifest, fileName: string, sha512: string): { ok: true } | { ok: false; code: 'FILE_NOT_IN_MANIFEST' | 'FILE_CHECKSUM_MISMATCH' } {
  const base = fileName.split(/[\\/]/).pop();
  const entry = manifest.files.find((f) => f.url.split('/').pop() === base) ?? (manifest.path?.split('/').pop() === base && manifest.sha512 ? { sha512: manifest.sha512 } : null);
  if (!entry) return { ok: false, code: 'FILE_NOT_IN_MANIFEST' };
  return entry.sha512 === sha512 ? { ok: true } : { ok: false, code: 'FILE_CHECKSUM_MISMATCH' };
}
