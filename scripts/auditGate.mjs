#!/usr/bin/env node
// The dependency gate of CI: `npm audit --omit=dev`, failing on any high or critical advisory in a
// production dependency that the reviewed allowlist (audit-allowlist.json) does not accept. Where
// the registry will not give advisories (these machines answer the bulk request with HTTP 405), it
// says so plainly and passes: it cannot tell, and a silent pass would look like a clean bill.
//   node scripts/auditGate.mjs [--from FILE]   (--from: a recorded `npm audit --json` response)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FAILING = ['high', 'critical'];
export const ALLOWLIST_FILE = join(import.meta.dirname, '..', 'audit-allowlist.json');

/** The advisory ids (GHSA or npm's numeric source) a finding comes from. */
function advisoryIds(via) {
  return via.filter((v) => typeof v === 'object' && v !== null).map((v) => (typeof v.url === 'string' && /GHSA-[\w-]+/.exec(v.url)?.[0]) || String(v.source));
}

/**
 * Judges one `npm audit --json` answer. Returns `{ status: 'unavailable' | 'pass' | 'fail', lines }`:
 * unavailable when the registry gave no advisories, fail when a high/critical finding is not
 * accepted by an unexpired allowlist entry.
 */
export function evaluateAudit(report, allowlist, today = new Date().toISOString().slice(0, 10)) {
  if (!report || typeof report !== 'object' || !report.vulnerabilities) {
    const why = report?.statusCode ? `HTTP ${report.statusCode}${report.message ? ` (${String(report.message).split(' - ')[0]})` : ''}` : report?.error?.summary || report?.message || 'no advisory data';
    return { status: 'unavailable', lines: [`audit gate: ADVISORIES COULD NOT BE FETCHED from the registry: ${why}.`, 'audit gate: no vulnerability check was done here; passing. Run it where the registry serves advisories before a release.'] };
  }
  const accepted = new Map();
  const lines = [];
  for (const entry of allowlist.entries ?? []) {
    if (entry.expires && entry.expires < today) lines.push(`audit gate: allowlist entry ${entry.advisory} for ${entry.package} expired on ${entry.expires}; it no longer accepts the finding.`);
    else accepted.set(`${entry.package} ${entry.advisory}`, entry);
  }
  const findings = [];
  for (const [name, vuln] of Object.entries(report.vulnerabilities)) {
    if (!FAILING.includes(vuln.severity)) continue;
    const ids = advisoryIds(vuln.via ?? []);
    // A finding only inherited from another package ("via": ["other"]) is judged at that package.
    if (ids.length === 0) continue;
    const open = ids.filter((id) => !accepted.has(`${name} ${id}`));
    if (open.length === 0) lines.push(`audit gate: ${name} ${ids.join(', ')} (${vuln.severity}) accepted by the allowlist.`);
    else findings.push(`${name}@${vuln.range ?? '?'}: ${vuln.severity} ${open.join(', ')}${vuln.fixAvailable ? ' (a fix is available)' : ''}`);
  }
  const counts = report.metadata?.vulnerabilities ?? {};
  lines.push(`audit gate: production dependencies: ${counts.critical ?? 0} critical, ${counts.high ?? 0} high, ${counts.moderate ?? 0} moderate, ${counts.low ?? 0} low.`);
  if (findings.length === 0) return { status: 'pass', lines: [...lines, 'audit gate: no unaccepted high or critical advisory.'] };
  return { status: 'fail', lines: [...lines, ...findings.map((f) => `audit gate: FAIL ${f}`), 'audit gate: fix, or review and add a dated entry to audit-allowlist.json.'] };
}

function main() {
  const from = process.argv.indexOf('--from');
  let text;
  if (from > 0) text = readFileSync(process.argv[from + 1], 'utf8');
  else text = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout;
  let report = null;
  try {
    report = JSON.parse(text);
  } catch {
    report = null;
  }
  const { status, lines } = evaluateAudit(report, JSON.parse(readFileSync(ALLOWLIST_FILE, 'utf8')));
  for (const line of lines) process.stdout.write(`${line}\n`);
  process.exit(status === 'fail' ? 1 : 0);
}

if (process.argv[1] === import.meta.filename) main();
