#!/usr/bin/env node
// `npm run sbom`: the release's CycloneDX SBOM (production dependencies only) at dist/sbom.cdx.json,
// made by @cyclonedx/cyclonedx-npm from the installed tree and the lock file.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const bin = join(root, 'node_modules', '@cyclonedx', 'cyclonedx-npm', 'bin', 'cyclonedx-npm-cli.js');
if (!existsSync(bin)) {
  process.stderr.write('sbom: @cyclonedx/cyclonedx-npm is not installed (a dev dependency: run npm ci); NO SBOM was made.\n');
  process.exit(1);
}
const out = process.argv[2] ?? join(root, 'dist', 'sbom.cdx.json');
mkdirSync(join(out, '..'), { recursive: true });
const r = spawnSync(process.execPath, [bin, '--omit', 'dev', '--spec-version', '1.6', '--output-format', 'JSON', '--output-reproducible', '--output-file', out], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  process.stderr.write(`sbom: cyclonedx-npm failed (exit ${r.status ?? r.signal}); NO SBOM was made.\n`);
  process.exit(1);
}
const bom = JSON.parse(readFileSync(out, 'utf8'));
process.stdout.write(`sbom: ${out}: CycloneDX ${bom.specVersion}, ${bom.components?.length ?? 0} components\n`);
