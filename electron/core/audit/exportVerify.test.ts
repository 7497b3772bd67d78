// The export's proof, checked the way another computer would: only the file, no keychain, no database.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { rawPublicKey } from '../keys/coreKeys';
import { createTestDb, type TestDb } from '../testing/testDb';
import { appendAudit, entryHash, GENESIS_HASH } from './auditLog';
import { auditCsv, buildAuditExport, csvCell } from './export';
import { verifyExport, type AuditExport } from './exportVerify';
import { anchorPrune, deletePrunedBatch, pruneDue } from './prune';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signing = { privateKey, publicKeyRaw: rawPublicKey(publicKey).toString('base64url') };
const deps = { installationId: 'INST1', applianceId: 'app-1', signing, witness: { ok: null, reason: 'not paired' }, at: Date.UTC(2025, 2, 4, 9, 30) };

const entry = (userId: string, contactIds: number[], action: 'read' | 'login' = 'read') => ({
  userId,
  displayName: userId.toUpperCase(),
  role: 'receptionist',
  sessionId: `s-${userId}`,
  action,
  method: action === 'read' ? 'messages.list' : 'auth.signIn',
  contactIds,
  origin: 'desk-1',
  outcome: 'ok' as const,
});

/** A log whose first entry was written before accounts existed (hash version 1). */
function seeded(): TestDb {
  const db = createTestDb();
  const v1 = { seq: 1, at: 500, user_id: 'old', role: 'receptionist', action: 'read', method: 'messages.list', contact_ids: '[1]', origin: 'desk-0', outcome: 'ok', error_code: null, reason: null };
  const hash = entryHash({ ...v1, display_name: null, session_id: null, hash_version: 1, prev_hash: GENESIS_HASH });
  db.db
    .prepare(`INSERT INTO audit_log (seq, at, user_id, role, action, method, contact_ids, origin, outcome, error_code, reason, prev_hash, hash, hash_version) VALUES (@seq, @at, @user_id, @role, @action, @method, @contact_ids, @origin, @outcome, @error_code, @reason, '${GENESIS_HASH}', '${hash}', 1)`)
    .run(v1);
  db.db.prepare(`INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (1, '15550001', 'Jan de Vries', 1, 1), (2, '15550002', '=HYPERLINK("x")', 1, 1)`).run();
  appendAudit(db.db, entry('anna', [1]), 1000);
  appendAudit(db.db, entry('bert', [2]), 2000);
  appendAudit(db.db, entry('anna', [], 'login'), 3000);
  appendAudit(db.db, entry('bert', [1, 2]), 4000);
  return db;
}

const parse = (json: string) => JSON.parse(json) as AuditExport;

describe('audit export proof', () => {
  it('of a pruned log carries the anchor and verifies from it; a tampered or dropped anchor fails', () => {
    t = seeded();
    const { db } = t;
    const due = pruneDue(db, 2_500)!;
    expect(due).toEqual({ throughSeq: 3, count: 3, held: 0, more: false });
    const anchor = anchorPrune(db, { ...due, cutAt: 2_500, at: 4_500, by: { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, origin: 'core' } });
    db.transaction(() => deletePrunedBatch(db, anchor.throughSeq, 100))();

    const files = buildAuditExport(db, { userId: 'bert' }, deps);
    const proof = parse(files.json);
    expect(proof.anchor).toEqual({ throughSeq: 3, throughHash: anchor.throughHash, recordSeq: 6 });
    // Bert's entry 3 was pruned: entry 5 is the one left; the pruning entry travels whole.
    expect(proof.entries.map((e) => e.seq)).toEqual([5]);
    expect(proof.chain).toEqual([[4, expect.any(String)], expect.objectContaining({ seq: 6, method: 'audit.pruned' })]);
    expect(verifyExport(files.json)).toMatchObject({ ok: true, entries: 1, checkpoint: { seq: 6 } });

    const withAnchor = (a: AuditExport['anchor']) => JSON.stringify({ ...proof, anchor: a });
    expect(verifyExport(withAnchor({ ...proof.anchor!, throughHash: 'f'.repeat(64) }))).toMatchObject({ ok: false, reason: expect.stringContaining('does not match the pruning entry 6') });
    // Moved past entry 4 (its digest dropped too): the pruning entry says 3.
    const skipped = { ...proof, chain: proof.chain.slice(1), anchor: { ...proof.anchor!, throughSeq: 4 } };
    expect(verifyExport(JSON.stringify(skipped))).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
    expect(verifyExport(withAnchor(null))).toMatchObject({ ok: false, brokenAt: 1, reason: 'entry 1 is missing from the export' });
  });

  it('carries the chosen entries in full, digests for the rest, version-1 rows whole, and verifies', () => {
    t = seeded();
    const files = buildAuditExport(t.db, { userId: 'bert' }, deps);
    expect(files.entries).toBe(2);
    expect(files.fileBaseName).toBe('audit-INST1-20250304-0930');
    const proof = parse(files.json);
    expect(proof.entries.map((e) => e.seq)).toEqual([3, 5]);
    expect(proof.chain).toEqual([expect.objectContaining({ seq: 1, hash_version: 1 }), [2, expect.stringMatching(/^[0-9a-f]{64}$/)], [4, expect.any(String)]]);
    expect(proof.checkpoint).toMatchObject({ signedFor: 'app-1', seq: 5 });
    expect(proof.signingPublicKey).toBe(signing.publicKeyRaw);
    expect(proof.contactNames).toEqual({ '1': 'Jan de Vries', '2': '=HYPERLINK("x")' });
    expect(verifyExport(files.json)).toMatchObject({ ok: true, entries: 2, checkpoint: { seq: 5 } });
  });

  it('an edited entry fails, naming the entry', () => {
    t = seeded();
    const proof = parse(buildAuditExport(t.db, { userId: 'bert' }, deps).json);
    proof.entries[0]!.contact_ids = '[7]';
    expect(verifyExport(JSON.stringify(proof))).toMatchObject({ ok: false, brokenAt: 3, reason: expect.stringContaining('entry 3 was altered') });
  });

  it('an entry edited with its hash recomputed breaks the link to the next one', () => {
    t = seeded();
    const proof = parse(buildAuditExport(t.db, {}, deps).json);
    const e = proof.entries.find((x) => x.seq === 2)!;
    e.user_id = 'someone-else';
    e.hash = createHash('sha256').update('x').digest('hex');
    const verdict = verifyExport(JSON.stringify(proof));
    expect(verdict).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('a removed entry, a changed digest or an altered version-1 row fail', () => {
    t = seeded();
    const json = buildAuditExport(t.db, { userId: 'bert' }, deps).json;
    const removed = parse(json);
    removed.chain = removed.chain.filter((c) => (Array.isArray(c) ? c[0] : c.seq) !== 4);
    expect(verifyExport(JSON.stringify(removed))).toMatchObject({ ok: false, brokenAt: 4, reason: expect.stringContaining('entry 4 is missing') });

    const digest = parse(json);
    (digest.chain[1] as [number, string])[1] = 'f'.repeat(64);
    expect(verifyExport(JSON.stringify(digest))).toMatchObject({ ok: false });

    const old = parse(json);
    (old.chain[0] as { origin: string }).origin = 'desk-9';
    expect(verifyExport(JSON.stringify(old))).toMatchObject({ ok: false, brokenAt: 1, reason: expect.stringContaining('entry 1 was altered') });
  });

  it('a forged checkpoint signature, or another key, fails', () => {
    t = seeded();
    const json = buildAuditExport(t.db, {}, deps).json;
    const forged = parse(json);
    const other = generateKeyPairSync('ed25519');
    forged.checkpoint!.signature = Buffer.alloc(64, 1).toString('base64url');
    expect(verifyExport(JSON.stringify(forged))).toMatchObject({ ok: false, reason: expect.stringContaining('signature') });

    const swapped = parse(json);
    swapped.signingPublicKey = rawPublicKey(other.publicKey).toString('base64url');
    expect(verifyExport(JSON.stringify(swapped))).toMatchObject({ ok: false, reason: expect.stringContaining('signature') });

    const moved = parse(json);
    moved.checkpoint!.at += 1;
    expect(verifyExport(JSON.stringify(moved)).ok).toBe(false);
    expect(verifyExport('not json')).toMatchObject({ ok: false, reason: expect.stringContaining('not a Clinic Inbox audit export') });
  });
});

describe('audit CSV', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    for (const lead of ['=', '+', '-', '@']) expect(csvCell(`${lead}1+1`)).toBe(`'${lead}1+1`);
    expect(csvCell('=HYPERLINK("x","y")')).toBe(`"'=HYPERLINK(""x"",""y"")"`);
    expect(csvCell('\tcmd')).toBe("'\tcmd");
  });

  it('has a header row and one row per entry, names looked up, never message text', () => {
    t = seeded();
    const files = buildAuditExport(t.db, { userId: 'bert' }, deps);
    const lines = files.csv.split('\r\n');
    expect(lines[0]).toBe('seq,time_utc,user_id,display_name,roles,session_id,action,method,patient_ids,patient_names,origin,outcome,error_code,reason');
    expect(lines[1]).toBe(`3,1970-01-01T00:00:02.000Z,bert,BERT,receptionist,s-bert,read,messages.list,2,"'=HYPERLINK(""x"")",desk-1,ok,,`);
    expect(lines[2]).toBe(`5,1970-01-01T00:00:04.000Z,bert,BERT,receptionist,s-bert,read,messages.list,1 2,"Jan de Vries; =HYPERLINK(""x"")",desk-1,ok,,`);
    expect(lines.slice(3)).toEqual(['']);
    expect(auditCsv([])).toBe(`${lines[0]}\r\n`);
  });
});
