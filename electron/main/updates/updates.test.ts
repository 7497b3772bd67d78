// The update decisions a compromised or careless update server could try to get past.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compareVersions, decideUpdate, inRollout, installDecision, manifestName, rolloutBucket, DAY_MS } from './decide';
import { checkDownloadedFile, parseManifest, sha512Base64, verifyManifest } from './manifest';
import { releaseKeyProblem, updateGate } from './releaseKey';

function keyPair(): { publicKey: string; sign(bytes: Uint8Array): string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { publicKey: der.subarray(der.length - 32).toString('base64'), sign: (bytes) => sign(null, bytes, privateKey).toString('base64') };
}

const installer = Buffer.from('pretend AppImage bytes');
const manifestText = (version: string, extra = '') =>
  `version: ${version}\nfiles:\n  - url: Clinic-Inbox-${version}.AppImage\n    sha512: ${sha512Base64(installer)}\n    size: ${installer.length}\npath: Clinic-Inbox-${version}.AppImage\nsha512: ${sha512Base64(installer)}\nreleaseDate: '2026-11-30T10:00:00.000Z'\n${extra}`;

describe('manifest signature', () => {
  const release = keyPair();
  const bytes = Buffer.from(manifestText('1.3.0'));

  it('accepts a manifest signed by the pinned key and reads its files', () => {
    const check = verifyManifest({ bytes, signature: release.sign(bytes), publicKeys: [release.publicKey] });
    expect(check.ok).toBe(true);
    if (check.ok) expect(check.manifest).toMatchObject({ version: '1.3.0', files: [{ url: 'Clinic-Inbox-1.3.0.AppImage', size: installer.length }], stagingPercentage: null });
  });

  it('refuses an unsigned manifest', () => {
    expect(verifyManifest({ bytes, signature: null, publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_UNSIGNED' });
    expect(verifyManifest({ bytes, signature: '  \n', publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_UNSIGNED' });
  });

  it('refuses a manifest signed by another key', () => {
    const attacker = keyPair();
    expect(verifyManifest({ bytes, signature: attacker.sign(bytes), publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_SIGNATURE_INVALID' });
  });

  it('accepts either key while the release key rotates', () => {
    const next = keyPair();
    expect(verifyManifest({ bytes, signature: next.sign(bytes), publicKeys: [release.publicKey, next.publicKey] }).ok).toBe(true);
  });

  it('refuses a manifest changed after signing (an other sha512, a higher version)', () => {
    const signature = release.sign(bytes);
    const tampered = Buffer.from(bytes.toString().replace('1.3.0', '1.3.1'));
    expect(verifyManifest({ bytes: tampered, signature, publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_SIGNATURE_INVALID' });
    expect(verifyManifest({ bytes, signature: 'bm90IGEgc2lnbmF0dXJl', publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_SIGNATURE_INVALID' });
  });

  it('refuses a signed file that is not a manifest', () => {
    const junk = Buffer.from('<html>hello</html>');
    expect(verifyManifest({ bytes: junk, signature: release.sign(junk), publicKeys: [release.publicKey] })).toEqual({ ok: false, code: 'MANIFEST_MALFORMED' });
  });
});

describe('downloaded file', () => {
  const manifest = parseManifest(manifestText('1.3.0'))!;
  it('matches the verified sha512', () => {
    expect(checkDownloadedFile(manifest, '/cache/pending/Clinic-Inbox-1.3.0.AppImage', sha512Base64(installer))).toEqual({ ok: true });
  });
  it('refuses a tampered file or one the manifest does not list', () => {
    expect(checkDownloadedFile(manifest, 'Clinic-Inbox-1.3.0.AppImage', sha512Base64(Buffer.from('evil')))).toEqual({ ok: false, code: 'FILE_CHECKSUM_MISMATCH' });
    expect(checkDownloadedFile(manifest, 'other.AppImage', sha512Base64(installer))).toEqual({ ok: false, code: 'FILE_NOT_IN_MANIFEST' });
  });
});

describe('version rules', () => {
  const at = (v: string, extra = '') => parseManifest(manifestText(v, extra))!;
  it('orders versions with prereleases below their release', () => {
    expect(['1.2.0', '1.10.0', '1.2.0-rc.2', '1.2.0-rc.10', '0.9.9'].sort(compareVersions)).toEqual(['0.9.9', '1.2.0-rc.2', '1.2.0-rc.10', '1.2.0', '1.10.0']);
  });
  it('offers a newer version, not the same one', () => {
    expect(decideUpdate({ current: '1.2.0', manifest: at('1.3.0'), bucket: 0.5, allowedVersion: null })).toEqual({ offer: true, version: '1.3.0', downgrade: false });
    expect(decideUpdate({ current: '1.3.0', manifest: at('1.3.0'), bucket: 0.5, allowedVersion: null })).toEqual({ offer: false, reason: 'not_newer' });
  });
  it('refuses a downgrade unless the policy names exactly that version', () => {
    expect(decideUpdate({ current: '1.3.0', manifest: at('1.2.0'), bucket: 0.5, allowedVersion: null })).toEqual({ offer: false, reason: 'downgrade_refused' });
    expect(decideUpdate({ current: '1.3.0', manifest: at('1.2.0'), bucket: 0.5, allowedVersion: '1.1.0' })).toEqual({ offer: false, reason: 'downgrade_refused' });
    expect(decideUpdate({ current: '1.3.0', manifest: at('1.2.0'), bucket: 0.5, allowedVersion: '1.2.0' })).toEqual({ offer: true, version: '1.2.0', downgrade: true });
  });
});

describe('staged rollout', () => {
  it('gives each installation a stable bucket, spread over [0, 1)', () => {
    expect(rolloutBucket('abc')).toBe(rolloutBucket('abc'));
    const buckets = Array.from({ length: 2000 }, (_, i) => rolloutBucket(`installation-${i}`));
    expect(Math.min(...buckets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...buckets)).toBeLessThan(1);
    const inTen = buckets.filter((b) => inRollout(b, 10)).length / buckets.length;
    expect(inTen).toBeGreaterThan(0.07);
    expect(inTen).toBeLessThan(0.13);
  });
  it('honours stagingPercentage 0, 100 and a non-number (nobody)', () => {
    const m = (pct: string) => parseManifest(manifestText('2.0.0', `stagingPercentage: ${pct}\n`))!;
    const bucket = 0.42;
    expect(decideUpdate({ current: '1.0.0', manifest: m('0'), bucket, allowedVersion: null })).toEqual({ offer: false, reason: 'outside_rollout' });
    expect(decideUpdate({ current: '1.0.0', manifest: m('100'), bucket, allowedVersion: null }).offer).toBe(true);
    expect(decideUpdate({ current: '1.0.0', manifest: m('50'), bucket, allowedVersion: null }).offer).toBe(true);
    expect(decideUpdate({ current: '1.0.0', manifest: m('40'), bucket, allowedVersion: null }).offer).toBe(false);
    expect(m('ten').stagingPercentage).toBe('invalid');
    expect(decideUpdate({ current: '1.0.0', manifest: m('ten'), bucket: 0, allowedVersion: null })).toEqual({ offer: false, reason: 'outside_rollout' });
  });
});

describe('install timing', () => {
  const base = { downloadedAt: 0, adminAsked: false, deskIdle: true };
  it('installs at quit, now when an admin asks, and after the deferral limit only on an idle desk', () => {
    expect(installDecision({ ...base, now: 99 * DAY_MS, deferralDays: null })).toBe('on_quit');
    expect(installDecision({ ...base, now: 1, deferralDays: null, adminAsked: true, deskIdle: false })).toBe('now');
    expect(installDecision({ ...base, now: 2 * DAY_MS, deferralDays: 3 })).toBe('on_quit');
    expect(installDecision({ ...base, now: 3 * DAY_MS, deferralDays: 3, deskIdle: false })).toBe('on_quit');
    expect(installDecision({ ...base, now: 3 * DAY_MS, deferralDays: 3 })).toBe('now');
  });
  it('reads the channel file electron-updater names', () => {
    expect([manifestName('stable', 'linux'), manifestName('early', 'darwin'), manifestName('stable', 'win32')]).toEqual(['latest-linux.yml', 'early-mac.yml', 'latest.yml']);
  });
});

describe('release keys pinned in a build', () => {
  const good = keyPair().publicKey;
  it('a build without a usable key checks nothing and says updates are off', () => {
    expect(releaseKeyProblem([])).toEqual({ code: 'NO_RELEASE_KEY' });
    expect(releaseKeyProblem(['c2hvcnQ='])).toEqual({ code: 'RELEASE_KEY_INVALID', index: 0 });
    expect(releaseKeyProblem([good, good])).toEqual({ code: 'RELEASE_KEY_DUPLICATE', index: 1 });
    expect(releaseKeyProblem([good, keyPair().publicKey])).toBeNull();
    expect(updateGate({ packaged: true, publicKeys: [], url: 'https://updates.example/' })).toBe('no_release_key');
    expect(updateGate({ packaged: true, publicKeys: [], url: null })).toBe('no_release_key');
    expect(updateGate({ packaged: true, publicKeys: [good], url: null })).toBe('idle');
    expect(updateGate({ packaged: true, publicKeys: [good], url: 'https://updates.example/' })).toBe('check');
    expect(updateGate({ packaged: false, publicKeys: [good], url: 'https://updates.example/' })).toBe('unsupported');
  });
});
