// The update server and the app's verifier together: a release signed with `npm run release --
// sign` and served over HTTPS is accepted; the same release with a tampered manifest or installer
// is refused. Range requests serve exact slices (electron-updater resumes and differential-downloads).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkForUpdate, type Fetch } from '../electron/main/updates/check';
import { checkDownloadedFile, sha512Base64 } from '../electron/main/updates/manifest';
import { isInsideRepo, publicKeyRawBase64, signManifests } from '../scripts/release';
import { selfSignedCertificate, startUpdateServer, type UpdateServer } from '../scripts/updateServer';

const installer = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 251));
let dir: string;
let server: UpdateServer;
let ca: string;
let privatePem: string;
let publicKey: string;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: Uint8Array; headers: Record<string, unknown> }> {
  return new Promise((ok, fail) => {
    const req = request(url, { ca, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', fail);
    req.end();
  });
}
const fetch: Fetch = (url) => get(url);

function writeRelease(version: string): void {
  writeFileSync(join(dir, `Clinic-Inbox-${version}.AppImage`), installer);
  const sha = sha512Base64(installer);
  writeFileSync(join(dir, 'latest-linux.yml'), `version: ${version}\nfiles:\n  - url: Clinic-Inbox-${version}.AppImage\n    sha512: ${sha}\n    size: ${installer.length}\npath: Clinic-Inbox-${version}.AppImage\nsha512: ${sha}\nreleaseDate: '2026-12-01T08:00:00.000Z'\n`);
  signManifests(dir, privatePem);
}

const check = () => checkForUpdate({ baseUrl: server.url, channel: 'stable', platform: 'linux', current: '0.1.0', installationId: 'desk-1', allowedVersion: null, publicKeys: [publicKey], fetch });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'releases-'));
  const tls = selfSignedCertificate();
  ca = tls.cert;
  privatePem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  publicKey = publicKeyRawBase64(privatePem);
  server = await startUpdateServer({ dir, tls });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('update server with signed releases', () => {
  it('serves a signed release that the verifier accepts, and its installer matches', async () => {
    writeRelease('0.2.0');
    const result = await check();
    expect(result).toMatchObject({ ok: true, decision: { offer: true, version: '0.2.0' } });
    const file = await get(`${server.url}Clinic-Inbox-0.2.0.AppImage`);
    expect(file.status).toBe(200);
    if (result.ok) expect(checkDownloadedFile(result.manifest, 'Clinic-Inbox-0.2.0.AppImage', sha512Base64(file.bytes))).toEqual({ ok: true });
  });

  it('refuses a manifest edited on the server after signing', async () => {
    writeRelease('0.2.0');
    const path = join(dir, 'latest-linux.yml');
    writeFileSync(path, readFileSync(path, 'utf8').replace('version: 0.2.0', 'version: 0.9.0'));
    expect(await check()).toEqual({ ok: false, code: 'MANIFEST_SIGNATURE_INVALID' });
  });

  it('refuses a release with no signature, and one whose installer was swapped', async () => {
    writeRelease('0.2.0');
    rmSync(join(dir, 'latest-linux.yml.sig'));
    expect(await check()).toEqual({ ok: false, code: 'MANIFEST_UNSIGNED' });

    writeRelease('0.2.0');
    writeFileSync(join(dir, 'Clinic-Inbox-0.2.0.AppImage'), Buffer.concat([installer, Buffer.from('#!/bin/sh\n')]));
    const result = await check();
    const file = await get(`${server.url}Clinic-Inbox-0.2.0.AppImage`);
    expect(result.ok).toBe(true);
    if (result.ok) expect(checkDownloadedFile(result.manifest, 'Clinic-Inbox-0.2.0.AppImage', sha512Base64(file.bytes))).toEqual({ ok: false, code: 'FILE_CHECKSUM_MISMATCH' });
  });

  it('answers range requests with exact slices, and 416 past the end', async () => {
    writeRelease('0.2.0');
    const url = `${server.url}Clinic-Inbox-0.2.0.AppImage`;
    const part = await get(url, { Range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${installer.length}`);
    expect(Buffer.compare(Buffer.from(part.bytes), installer.subarray(1000, 2000))).toBe(0);
    const tail = await get(url, { Range: 'bytes=-10' });
    expect(Buffer.compare(Buffer.from(tail.bytes), installer.subarray(-10))).toBe(0);
    expect((await get(url, { Range: `bytes=${installer.length}-` })).status).toBe(416);
    expect((await get(`${server.url}..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  it('keeps the release key out of the repository', () => {
    expect(isInsideRepo(join(import.meta.dirname, 'release-key.pem'))).toBe(true);
    expect(isInsideRepo(join(tmpdir(), 'release-key.pem'))).toBe(false);
  });
});
