// The auditor's desk against a real core (real keychain, real SQLCipher file): receptionists open
// patients through their own signed-in connections, and the auditor asks who saw whom, pages through
// the log, finds patients by name or number, and exports a proof that verifies from the file alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntryView, RpcOutput } from '../../../shared/rpc';
import { startAuditClinic, type AuditClinic } from '../testing/auditClinic';
import { IT_ADMIN, rpc, signIn, TEST_PASSWORD, type Person } from '../testing/users';
import type { Connection } from '../types';
import { verifyExport, type AuditExport } from './exportVerify';

const ANNA: Person = { username: 'anna', displayName: 'Anna Receptie', roles: ['receptionist'] };
const BRAM: Person = { username: 'bram', displayName: 'Bram Balie', roles: ['receptionist'] };
const OLGA: Person = { username: 'olga', displayName: 'Olga Audit', roles: ['auditor'] };

let c: AuditClinic;
let anna: Connection;
let bram: Connection;
let olga: Connection;
let t0: number;

beforeAll(async () => {
  c = await startAuditClinic({ patients: 3 });
  anna = await signIn(c.core, ANNA, 'desk-front');
  bram = await signIn(c.core, BRAM, 'desk-back');
  olga = await signIn(c.core, OLGA, 'desk-audit');
  const [p0, p1] = c.patients;
  t0 = c.clock.now();
  c.clock.advance(60_000);
  await rpc(anna, 'conversations.get', { conversationId: p0!.conversationId });
  await rpc(anna, 'messages.list', { conversationId: p0!.conversationId });
  c.clock.advance(60_000);
  await rpc(bram, 'conversations.get', { conversationId: p0!.conversationId });
  c.clock.advance(60_000);
  await rpc(bram, 'conversations.get', { conversationId: p1!.conversationId });
  c.clock.advance(60_000);
}, 60_000);
afterAll(async () => c?.stop());

async function everything(filter: Record<string, unknown>, limit = 2): Promise<AuditEntryView[]> {
  const out: AuditEntryView[] = [];
  let cursor: string | null = null;
  do {
    const page: RpcOutput<'audit.query'> = await rpc(olga, 'audit.query', { filter, limit, ...(cursor ? { cursor } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

describe("the auditor's desk", () => {
  it('shows who accessed a patient: the receptionists who opened them, with the name the clinic knows', async () => {
    const [p0] = c.patients;
    const page = await rpc(olga, 'audit.query', { filter: { contactId: p0!.contactId } });
    expect(page.items.map((e) => [e.displayName, e.method, e.origin])).toEqual([
      ['Bram Balie', 'conversations.get', 'desk-back'],
      ['Anna Receptie', 'messages.list', 'desk-front'],
      ['Anna Receptie', 'conversations.get', 'desk-front'],
    ]);
    const first = page.items[2]!;
    expect(first).toMatchObject({ action: 'read', outcome: 'ok', roles: ['receptionist'], contacts: [{ id: p0!.contactId, name: 'Testpatient 000' }] });
    expect(first.sessionId).toEqual(expect.any(String));
    expect(page.nextCursor).toBeNull();
    // Never message text.
    expect(JSON.stringify(page)).not.toContain('Termin bitte');
  });

  it('filters by user and time range, by action and by session, newest first, page by page', async () => {
    const all = await everything({}, 200);
    const annaId = all.find((e) => e.displayName === 'Anna Receptie')!.userId;
    const paged = await everything({}, 3);
    expect(paged.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => b - a));

    const annaReads = await everything({ userId: annaId, action: 'read' }, 1);
    expect(annaReads.map((e) => e.method)).toEqual(['messages.list', 'conversations.get']);
    expect(await everything({ userId: annaId, from: t0 + 60_000, to: t0 + 60_001 })).toHaveLength(2);
    expect(await everything({ userId: annaId, from: t0 + 60_001 })).toHaveLength(0);

    const logins = await everything({ action: 'login' });
    expect(new Set(logins.map((e) => e.displayName))).toEqual(new Set(['IT admin', 'Anna Receptie', 'Bram Balie', 'Olga Audit']));
    const bramSession = all.find((e) => e.displayName === 'Bram Balie' && e.method === 'conversations.get')!.sessionId!;
    const bramCalls = await everything({ sessionId: bramSession });
    expect(bramCalls.every((e) => e.sessionId === bramSession)).toBe(true);
    expect(bramCalls.filter((e) => e.action === 'read')).toHaveLength(2);
  });

  it('refuses the reports to a receptionist, and a broken cursor gets a clear error', async () => {
    expect(await anna.dispatch('audit.query', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await anna.dispatch('audit.export', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await olga.dispatch('audit.query', { cursor: 'nonsense' })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
  });

  it('finds patients by name or number (at most 20) and records that the auditor saw them', async () => {
    const [, p1, p2] = c.patients;
    expect(await rpc(olga, 'audit.findPatients', { query: 'testpatient 001' })).toEqual([{ contactId: p1!.contactId, name: 'Testpatient 001' }]);
    expect(await rpc(olga, 'audit.findPatients', { query: '+1 555 560 0002' })).toEqual([{ contactId: p2!.contactId, name: 'Testpatient 002' }]);
    expect(await rpc(olga, 'audit.findPatients', { query: '%' })).toEqual([]);
    expect(await rpc(olga, 'audit.findPatients', { query: 'Testpatient' })).toHaveLength(3);
    const seen = await rpc(olga, 'audit.query', { filter: { contactId: p2!.contactId, action: 'read' } });
    expect(seen.items[0]).toMatchObject({ displayName: 'Olga Audit', method: 'audit.findPatients' });
  });

  it('exports a filtered view as CSV and a JSON proof that verifies from the file alone, and audits the export', async () => {
    const [p0] = c.patients;
    const files = await rpc(olga, 'audit.export', { filter: { contactId: p0!.contactId } });
    // The receptionists' three reads, and the auditor's own search that listed this patient.
    expect(files.entries).toBe(4);
    expect(files.fileBaseName).toMatch(new RegExp(`^audit-${c.core.installationId}-\\d{8}-\\d{4}$`));
    const proof = JSON.parse(files.json) as AuditExport;
    expect(proof.installationId).toBe(c.core.installationId);
    expect(proof.applianceId).toBeNull();
    expect(proof.witness).toMatchObject({ ok: null });
    expect(proof.entries.map((e) => e.display_name)).toEqual(['Anna Receptie', 'Anna Receptie', 'Bram Balie', 'Olga Audit']);
    expect(verifyExport(files.json)).toMatchObject({ ok: true, entries: 4 });
    expect(files.csv.split('\r\n').filter((l) => l.includes('Testpatient 000'))).toHaveLength(4);
    expect(files.json + files.csv).not.toContain('Termin bitte');

    const exports = await rpc(olga, 'audit.query', { filter: { action: 'export' } });
    expect(exports.items[0]).toMatchObject({ displayName: 'Olga Audit', method: 'audit.export', outcome: 'ok' });
    expect(await rpc(olga, 'audit.verify', { withRelayWitness: false })).toMatchObject({ chain: { ok: true } });
  });

  it('after the retention policy pruned the old entries, the log still verifies, says from where, and exports a proof that verifies', async () => {
    const headBefore = (await rpc(olga, 'audit.query', { filter: {}, limit: 1 })).items[0]!.seq;
    // Two days on, with the audit log kept one day: everything written so far is past the policy.
    c.clock.advance(2 * 24 * 60 * 60_000);
    // The earlier sessions have expired by now: both sign in again.
    const again = async (username: string, origin: string) => {
      const connection = c.core.connect(origin);
      await rpc(connection, 'auth.signIn', { username, password: TEST_PASSWORD });
      return connection;
    };
    const admin = await again(IT_ADMIN.username, 'desk-it');
    const auditor = await again(OLGA.username, 'desk-audit');
    await rpc(admin, 'privacy.retention.update', { rules: [{ kind: 'audit', days: 1, legalMinimumDays: 0 }] });
    const preview = await rpc(admin, 'privacy.retention.preview', {});
    expect(preview.audit).toBeGreaterThanOrEqual(headBefore);

    const run = await rpc(admin, 'privacy.retention.runNow', {});
    expect(run.counts!.audit).toBe(preview.audit);
    const verdict = await rpc(auditor, 'audit.verify', { withRelayWitness: false });
    expect(verdict.chain).toMatchObject({ ok: true, prunedThrough: preview.audit });
    expect(verdict.chain.ok && verdict.chain.entries).toBe(verdict.chain.ok && verdict.chain.headSeq! - preview.audit);

    const left = await rpc(auditor, 'audit.query', { filter: {}, limit: 100 });
    expect(Math.min(...left.items.map((e) => e.seq))).toBe(preview.audit + 1);
    const pruning = left.items.find((e) => e.method === 'audit.pruned');
    expect(pruning).toMatchObject({ action: 'delete', displayName: 'IT admin', outcome: 'ok' });
    expect(pruning!.reason).toContain(`pruned entries through ${preview.audit} `);
    expect(left.items.find((e) => e.method === 'privacy.retention.run')!.reason).toContain(`${preview.audit} audit entries past policy pruned`);

    const files = await rpc(auditor, 'audit.export', { filter: {} });
    expect(verifyExport(files.json)).toMatchObject({ ok: true });
    expect((JSON.parse(files.json) as AuditExport).anchor).toMatchObject({ throughSeq: preview.audit });
  });
});
