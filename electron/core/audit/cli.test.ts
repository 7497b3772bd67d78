// `npm run audit -- …` end to end: real child processes of the command, on a real data folder whose
// keys sit in the test runner's keychain. The log begins with an entry from before accounts
// (hash version 1) on a version-40 database, migrated to the current schema before patients arrive.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuditClinic, type AuditClinic } from '../testing/auditClinic';
import { IT_ADMIN, rpc, signIn, TEST_PASSWORD } from '../testing/users';
import type { AuditExport } from './exportVerify';

const CLI = join(import.meta.dirname, 'cli.ts');
let c: AuditClinic;

function audit(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  c = await startAuditClinic({ patients: 2, legacyEntry: true });
  const anna = await signIn(c.core, { username: 'anna', displayName: 'Anna, "front desk"', roles: ['receptionist'] }, 'desk-front');
  for (const p of c.patients) await rpc(anna, 'messages.list', { conversationId: p.conversationId });
  // The command opens the folder itself.
  await c.closeCore();
}, 60_000);
afterAll(async () => c?.stop());

describe('npm run audit', () => {
  it('query: who accessed a patient, as CSV and as JSON, names but never message text', () => {
    const [p0] = c.patients;
    const csv = audit('--data-dir', c.dataDir, 'query', '--patient', String(p0!.contactId));
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\r\n');
    expect(lines[0]).toMatch(/^seq,time_utc,user_id,display_name,/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('"Anna, ""front desk"""');
    expect(lines[2]).toMatch(/^1,.*,anna,,receptionist,,read,messages\.list,\d+,Testpatient 000,electron,ok,,$/);
    expect(csv.stdout).not.toContain('Termin bitte');

    const json = audit('--data-dir', c.dataDir, 'query', '--action', 'read', '--from', '2000-01-01T00:00:00Z', '--format', 'json');
    expect(json.code).toBe(0);
    const entries = JSON.parse(json.stdout) as { seq: number; method: string }[];
    expect(entries.map((e) => e.method)).toEqual(['messages.list', 'messages.list', 'messages.list']);
  }, 60_000);

  it('export writes the proof and the CSV; verify-export passes, then names an edited entry and refuses a forged signature', () => {
    const file = join(c.dataDir, 'export.json');
    const done = audit('--data-dir', c.dataDir, 'export', '--out', file, '--action', 'read');
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('Exported 3 entries');
    expect(readFileSync(`${file}.csv`, 'utf8').split('\r\n')).toHaveLength(5);

    const ok = audit('verify-export', file);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('INTACT: 3 entries');
    expect(ok.stdout).toMatch(/fingerprint .*: ([0-9a-f]{4} ){15}[0-9a-f]{4}/);
    expect(ok.stdout).toContain('not asked or unreachable');

    const proof = JSON.parse(readFileSync(file, 'utf8')) as AuditExport;
    const edited = structuredClone(proof);
    edited.entries[1]!.user_id = 'someone-else';
    writeFileSync(join(c.dataDir, 'edited.json'), JSON.stringify(edited));
    const bad = audit('verify-export', join(c.dataDir, 'edited.json'));
    expect(bad.code).toBe(3);
    expect(bad.stdout).toContain(`NOT INTACT: entry ${proof.entries[1]!.seq} was altered`);

    const forged = structuredClone(proof);
    forged.checkpoint!.signature = Buffer.alloc(64, 7).toString('base64url');
    writeFileSync(join(c.dataDir, 'forged.json'), JSON.stringify(forged));
    const sig = audit('verify-export', join(c.dataDir, 'forged.json'));
    expect(sig.code).toBe(3);
    expect(sig.stdout).toContain('signature');
  }, 90_000);

  it('verify checks the local chain (the version-1 entry included); usage errors exit 2', () => {
    const v = audit('--data-dir', c.dataDir, 'verify');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ chain: { ok: true }, witness: { ok: null } });
    expect(audit('verify-export').code).toBe(2);
    expect(audit('verify-export', join(c.dataDir, 'nope.json')).code).toBe(2);
    expect(audit('--data-dir', c.dataDir, 'query', '--action', 'peek').code).toBe(2);
    expect(audit('--data-dir', c.dataDir, 'query', '--from', 'yesterday').stderr).toContain('--from needs a date');
    expect(audit('frobnicate').code).toBe(2);
  }, 90_000);
});

describe('npm run audit on a log pruned by retention', () => {
  let pruned: AuditClinic;
  let through = 0;
  beforeAll(async () => {
    pruned = await startAuditClinic({ patients: 1, legacyEntry: true });
    const anna = await signIn(pruned.core, { username: 'anna', displayName: 'Anna', roles: ['receptionist'] }, 'desk-front');
    await rpc(anna, 'messages.list', { conversationId: pruned.patients[0]!.conversationId });
    // Two days on, the audit log kept one day: every entry so far, the version-1 one included, is past the policy.
    pruned.clock.advance(2 * 24 * 60 * 60_000);
    const admin = pruned.core.connect('desk-it');
    await rpc(admin, 'auth.signIn', { username: IT_ADMIN.username, password: TEST_PASSWORD });
    await rpc(admin, 'privacy.retention.update', { rules: [{ kind: 'audit', days: 1, legalMinimumDays: 0 }] });
    through = (await rpc(admin, 'privacy.retention.runNow', {})).counts!.audit;
    await pruned.closeCore();
  }, 90_000);
  afterAll(async () => pruned?.stop());

  it('verify says intact from the anchor on; an export verifies on any computer, and not with its anchor changed', () => {
    expect(through).toBeGreaterThan(1);
    const v = audit('--data-dir', pruned.dataDir, 'verify');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ chain: { ok: true, prunedThrough: through } });

    const file = join(pruned.dataDir, 'pruned.json');
    expect(audit('--data-dir', pruned.dataDir, 'export', '--out', file).code).toBe(0);
    const proof = JSON.parse(readFileSync(file, 'utf8')) as AuditExport;
    expect(proof.anchor).toMatchObject({ throughSeq: through });
    expect(audit('verify-export', file).code).toBe(0);
    writeFileSync(join(pruned.dataDir, 'moved.json'), JSON.stringify({ ...proof, anchor: { ...proof.anchor!, throughHash: '0'.repeat(64) } }));
    const moved = audit('verify-export', join(pruned.dataDir, 'moved.json'));
    expect(moved.code).toBe(3);
    expect(moved.stdout).toContain('NOT INTACT');
  }, 90_000);
});

