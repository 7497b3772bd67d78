import { decideUpdate, manifestName, rolloutBucket, type UpdateDecision } from './decide';
import { verifyManifest, type Manifest } from './manifest';

export type Fetch = (url: string) => Promise<{ status: number; bytes: Uint8Array }>;

export interface CheckInput {
  /** The update server (policy or setting); the manifest and its `.sig` are read from there. */
  baseUrl: string;
  channel: 'stable' | 'early';
  platform: NodeJS.Platform;
  current: string;
  installationId: string;
  allowedVersion: string | null;
  publicKeys: readonly string[];
  fetch: Fetch;
}

export type CheckResult = { ok: true; manifest: Manifest; decision: UpdateDecision; manifestUrl: string } | { ok: false; code: string };

/**
 * One check: fetch the channel's manifest and its signature, verify them against the pinned keys,
 * decide. Only a verified, offered manifest is handed on to electron-updater, and the downloaded
 * file is then held to this manifest's sha512 (not the one electron-updater fetched itself).
 */
export async function checkForUpdate(input: CheckInput): Promise<CheckResult> {
  const base = input.baseUrl.endsWith('/') ? input.baseUrl : `${input.baseUrl}/`;
  const manifestUrl = new URL(manifestName(input.channel, input.platform), base).href;
  let manifest: { status: number; bytes: Uint8Array };
  let signature: { status: number; bytes: Uint8Array };
  try {
    [manifest, signature] = await Promise.all([input.fetch(manifestUrl), input.fetch(`${manifestUrl}.sig`)]);
  } catch {
    return { ok: false, code: 'UPDATE_SERVER_UNREACHABLE' };
  }
  if (manifest.status !== 200) return { ok: false, code: manifest.status === 404 ? 'NO_RELEASE' : 'UPDATE_SERVER_ERROR' };
  const check = verifyManifest({ bytes: manifest.bytes, signature: signature.status === 200 ? Buffer.from(signature.bytes).toString('utf8') : null, publicKeys: input.publicKeys });
  if (!check.ok) return check;
  const decision = decideUpdate({ current: input.current, manifest: check.manifest, bucket: rolloutBucket(input.installationId), allowedVersion: input.allowedVersion });
  return { ok: true, manifest: check.manifest, decision, manifestUrl };
}
