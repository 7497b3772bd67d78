// The release tooling a typo or a drift would break silently: electron-builder.yml against
// electron-builder's own schema, the icons against their one SVG, the audit gate against recorded
// registry answers (and its place in CI), and the published policy schema.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { RELEASE_PUBLIC_KEYS, releaseKeyProblem } from '../electron/main/updates/releaseKey';
import { publicKeyRawBase64, releaseRefusal } from '../scripts/release';
// @ts-expect-error plain .mjs scripts without type declarations
import { evaluateAudit } from '../scripts/auditGate.mjs';
// @ts-expect-error plain .mjs scripts without type declarations
import { makeIcons } from '../scripts/icons.mjs';

const ROOT = join(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };

describe('electron-builder.yml', () => {
  const validate = () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    return ajv.compile(JSON.parse(readFileSync(join(ROOT, 'node_modules', 'app-builder-lib', 'scheme.json'), 'utf8')));
  };
  const config = () => yaml.load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;

  it("passes electron-builder's own schema", () => {
    const check = validate();
    expect(check(config()), JSON.stringify(check.errors, null, 1)).toBe(true);
  });

  it('fails it on a typo, so CI catches one', () => {
    const check = validate();
    expect(check({ ...config(), electronFuse: { runAsNode: false } })).toBe(false);
    expect(check({ ...config(), nsis: { oneclick: false } })).toBe(false);
  });

  it('keeps the file protocol without extra privileges (the renderer is served from app://)', () => {
    expect(config()['electronFuses']).toMatchObject({ grantFileProtocolExtraPrivileges: false, runAsNode: false, onlyLoadAppFromAsar: true });
  });
});

describe('icons', () => {
  it('are what scripts/icons.mjs makes from build/icon.svg (npm run icons)', () => {
    const out = mkdtempSync(join(tmpdir(), 'icons-'));
    try {
      const files = makeIcons(out) as string[];
      expect(files).toEqual(expect.arrayContaining(['icon.png', 'icon.ico', 'icon.icns', 'icons/512x512.png']));
      for (const file of files) expect(Buffer.compare(readFileSync(join(out, file)), readFileSync(join(ROOT, 'build', file))), file).toBe(0);
      const ico = readFileSync(join(ROOT, 'build', 'icon.ico'));
      expect([ico.readUInt16LE(2), ico.readUInt16LE(4)]).toEqual([1, 7]);
      expect(readFileSync(join(ROOT, 'build', 'icon.icns')).subarray(0, 4).toString('ascii')).toBe('icns');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('audit gate', () => {
  const recorded = (name: string) => JSON.parse(readFileSync(join(ROOT, 'tests', 'vectors', 'npm-audit', name), 'utf8')) as unknown;
  const none = { entries: [] };

  it('says plainly that advisories could not be fetched when the registry refuses (HTTP 405), and passes', () => {
    const result = evaluateAudit(recorded('registry-405.json'), none);
    expect(result.status).toBe('unavailable');
    expect(result.lines[0]).toMatch(/ADVISORIES COULD NOT BE FETCHED.*HTTP 405/);
  });

  it('fails on a high advisory in a production dependency, naming it', () => {
    const result = evaluateAudit(recorded('high-ws.json'), none, '2026-12-01');
    expect(result.status).toBe('fail');
    expect(result.lines.join('\n')).toContain('FAIL ws@8.0.0 - 8.17.0: high GHSA-3h5v-q93c-6h6q');
    // The low finding and the package that only inherits ws's advisory are not failures of their own.
    expect(result.lines.join('\n')).not.toMatch(/FAIL (brace-expansion|some-wrapper)/);
  });

  it('passes a finding the reviewed allowlist accepts, until the acceptance expires', () => {
    const allow = { entries: [{ package: 'ws', advisory: 'GHSA-3h5v-q93c-6h6q', reason: 'only the relay uses ws; behind the proxy header limit', reviewedBy: 'security', reviewedAt: '2026-11-20', expires: '2027-02-18' }] };
    expect(evaluateAudit(recorded('high-ws.json'), allow, '2026-12-01').status).toBe('pass');
    const later = evaluateAudit(recorded('high-ws.json'), allow, '2027-03-01');
    expect(later.status).toBe('fail');
    expect(later.lines.join('\n')).toMatch(/expired on 2027-02-18/);
  });

  it('runs in CI before the tests, with the SBOM', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    const gate = ci.indexOf('node scripts/auditGate.mjs');
    expect(gate).toBeGreaterThan(ci.indexOf('npm ci'));
    expect(gate).toBeLessThan(ci.lastIndexOf('npm test'));
    expect(ci).toContain('npm run --silent sbom');
    expect(JSON.parse(readFileSync(join(ROOT, 'audit-allowlist.json'), 'utf8'))).toMatchObject({ reviewed: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), entries: expect.any(Array) });
  });
});

describe('the pinned release key', () => {
  const pem = (): string => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

  it('refuses a release while the build pins no key, telling the release manager what to do', () => {
    const refusal = releaseRefusal([]);
    expect(refusal).toMatch(/no release key is pinned in this build/);
    expect(refusal).toContain('npm run release -- keygen --out FILE');
    expect(refusal).toContain('electron/main/updates/releaseKey.ts');
    expect(releaseRefusal(['not a key'])).toMatch(/number 1 .* not a 32-byte Ed25519 public key/);
  });

  it('refuses to sign with a key the build does not pin, and signs with a pinned one (either of two while rotating)', () => {
    const current = pem();
    const next = pem();
    const pinned = [publicKeyRawBase64(current), publicKeyRawBase64(next)];
    expect(releaseRefusal(pinned, current)).toBeNull();
    expect(releaseRefusal(pinned, next)).toBeNull();
    expect(releaseRefusal([pinned[0]!], next)).toMatch(/is not pinned in this build/);
  });

  it('the list in this build is either empty (refused above) or only usable keys', () => {
    expect([null, 'NO_RELEASE_KEY']).toContain(releaseKeyProblem(RELEASE_PUBLIC_KEYS)?.code ?? null);
  });

  it.runIf(RELEASE_PUBLIC_KEYS.length === 0)('npm run release -- sign and electron-builder\u2019s beforePack hook refuse this build, and nothing is signed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clinic-release-'));
    try {
      const keyFile = join(dir, 'release-key.pem');
      writeFileSync(keyFile, pem(), { mode: 0o600 });
      writeFileSync(join(dir, 'latest-linux.yml'), 'version: 9.9.9\npath: x.AppImage\nsha512: abc\n');
      const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'release.ts'), 'sign', '--key', keyFile, '--dir', dir], { encoding: 'utf8' });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/release: no release key is pinned in this build .*npm run release -- keygen/);
      expect(readdirSync(dir).sort()).toEqual(['latest-linux.yml', 'release-key.pem']);
      expect((yaml.load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>)['beforePack']).toBe('./build/releaseKeyGuard.mjs');
      // @ts-expect-error a plain .mjs hook without type declarations
      const guard = (await import('../build/releaseKeyGuard.mjs')) as { default: () => Promise<void> };
      await expect(guard.default()).rejects.toThrow(/Packaging refused\. release: no release key is pinned in this build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
