import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { applyWebhook } from '../ingest/apply';
import { readMediaBytes } from '../db/repo/media';
import { searchMessages } from '../db/repo/search';
import { mediaDirOf, writeMediaFile } from '../media/fileStore';
import { ALL_SHARDS, shardCommand, shardOf, shardSegmentCount, shardSetting } from '../db/searchShards';
import { decryptedPages } from '../testing/decryptedPages';
import { createTestDb, type TestDb } from '../testing/testDb';
import { contact, webhookBody, wamid } from '../testing/whatsappPayloads';
import { clearLegalHold, setLegalHold } from './legalHold';
import { readAnchor } from '../audit/anchor';
import { appendAudit, verifyAuditChain } from '../audit/auditLog';
import { parsePruneReason, PRUNE_METHOD } from '../audit/chain';
import { verifyChain } from '../audit/verifyChain';
import { previewRetention, runRetention, updateRetentionRules, type RetentionHold } from './retention';

const DAY = 24 * 60 * 60_000;
const NOW = Date.UTC(2026, 4, 11);

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

/** A patient's messages at the given ages (days before NOW); returns contact and conversation ids. */
function patient(db: TestDb['db'], waId: string, ages: number[], withMedia = false): { contactId: number; conversationId: number; wamids: string[] } {
  const wamids: string[] = [];
  for (const age of ages) {
    const id = wamid(waId);
    wamids.push(id);
    const at = NOW - age * DAY;
    const message = withMedia
      ? { from: waId, id, timestamp: String(Math.floor(at / 1000)), type: 'image', image: { id: `media-${id}`, mime_type: 'image/jpeg', sha256: 'x', caption: `Foto ${age} dagen` } }
      : { from: waId, id, timestamp: String(Math.floor(at / 1000)), type: 'text', text: { body: `Bericht van ${waId} ${age} dagen oud, kenmerk${waId}` } };
    applyWebhook(db, WebhookSchema.parse(webhookBody({ contacts: [contact(`P ${waId}`, waId)], messages: [message] })), { receivedAt: at });
    db.prepare(`INSERT INTO message_statuses (wamid, status, status_at, raw_json, received_at) VALUES (?, 'read', ?, '{}', ?)`).run(id, at, at);
    if (withMedia) db.prepare(`UPDATE media SET content = ?, state = 'stored', created_at = ? WHERE media_id = ?`).run(Buffer.from(`bytes of ${id}`), at, `media-${id}`);
  }
  const row = db.prepare('SELECT c.id, c.contact_id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = ?').get(waId) as { id: number; contact_id: number };
  return { contactId: row.contact_id, conversationId: row.id, wamids };
}

describe('retention', () => {
  it('removes exactly what expired, nothing of a patient under legal hold, in batches inside the budget', async () => {
    t = createTestDb();
    const { db } = t;
    // Messages: 2 years after the conversation's last activity. Media: 1 year.
    const old = patient(db, '31600000001', [1000, 900, 800]);
    const held = patient(db, '31600000002', [1200, 1100]);
    const recentConversationOldText = patient(db, '31600000003', [1500, 10]);
    const photos = patient(db, '31600000004', [400, 300, 20], true);
    setLegalHold(db, { contactId: held.contactId, reason: 'WGBO dossier', by: 'admin', now: NOW });

    db.pragma('wal_checkpoint(TRUNCATE)');
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pagesWith = (needle: string) => decryptedPages(t!.path, t!.key, pageSize).filter((p) => p.includes(needle)).length;
    expect(pagesWith('kenmerk31600000001')).toBeGreaterThan(0);

    const preview = previewRetention(db, NOW);
    expect(preview).toEqual({ messages: 3, conversations: 1, media: 1, drafts: 0, audit: 0, auditDue: 0, auditHeld: 0, heldPatients: 1 });

    const result = await runRetention(db, { now: () => NOW, trigger: 'manual', budgetMs: 50 });
    expect(result.counts).toEqual(preview);
    expect(result.longestHoldMs).toBeLessThan(50);

    const count = (sql: string, ...args: unknown[]) => db.prepare(sql).pluck().get(...args) as number;
    expect(count('SELECT count(*) FROM messages WHERE conversation_id = ?', old.conversationId)).toBe(0);
    expect(count('SELECT count(*) FROM conversations WHERE id = ?', old.conversationId)).toBe(0);
    expect(count(`SELECT count(*) FROM message_statuses WHERE wamid IN (${old.wamids.map(() => '?').join(',')})`, ...old.wamids)).toBe(0);
    // The contact stays (with its consent history); only its messages went.
    expect(count('SELECT count(*) FROM contacts WHERE id = ?', old.contactId)).toBe(1);
    expect(searchMessages(db, { query: '31600000001' }).items).toEqual([]);
    // Gone for real: after the run's index purge and a checkpoint, no page of the file holds the
    // expired text (search-index pages included); the held patient's is still there.
    db.pragma('wal_checkpoint(TRUNCATE)');
    expect(pagesWith('kenmerk31600000001')).toBe(0);
    expect(pagesWith('kenmerk31600000002')).toBeGreaterThan(0);

    expect(count('SELECT count(*) FROM messages WHERE conversation_id = ?', held.conversationId)).toBe(2);
    // A conversation still active keeps all of its messages, however old each one is.
    expect(count('SELECT count(*) FROM messages WHERE conversation_id = ?', recentConversationOldText.conversationId)).toBe(2);
    // Only the photo older than a year lost its bytes; its message stays and says why.
    const media = db.prepare('SELECT m.wamid, x.content IS NOT NULL AS kept, x.last_error FROM media x JOIN messages m ON m.id = x.message_id WHERE m.conversation_id = ? ORDER BY m.sent_at').all(photos.conversationId);
    expect(media).toEqual([
      { wamid: photos.wamids[0], kept: 0, last_error: 'removed by the retention policy' },
      { wamid: photos.wamids[1], kept: 1, last_error: null },
      { wamid: photos.wamids[2], kept: 1, last_error: null },
    ]);

    // A second run finds nothing more.
    expect((await runRetention(db, { now: () => NOW, trigger: 'manual' })).counts).toMatchObject({ messages: 0, conversations: 0, media: 0 });
  });

  it('an expired photo kept as a file loses its key and its file; a recent one keeps both', async () => {
    t = createTestDb();
    const { db } = t;
    const photos = patient(db, '31600000005', [400, 20], true);
    const dir = mediaDirOf(t.path);
    const ids = db.prepare('SELECT x.id FROM media x JOIN messages m ON m.id = x.message_id WHERE m.conversation_id = ? ORDER BY m.sent_at').pluck().all(photos.conversationId) as number[];
    const names = ids.map((id) => {
      const file = writeMediaFile(dir, id, randomBytes(300_000));
      db.prepare('UPDATE media SET content = NULL, file_name = ?, file_key = ? WHERE id = ?').run(file.fileName, file.fileKey, id);
      return file.fileName;
    });
    expect(previewRetention(db, NOW).media).toBe(1);

    expect((await runRetention(db, { now: () => NOW, trigger: 'manual' })).counts.media).toBe(1);
    expect(db.prepare('SELECT file_name, file_key, last_error FROM media WHERE id = ?').get(ids[0])).toEqual({ file_name: null, file_key: null, last_error: 'removed by the retention policy' });
    expect(readdirSync(dir)).toEqual([names[1]]);
    expect(readMediaBytes(db, ids[1]!)).toHaveLength(300_000);
  });

  it('a conversation too long for one batch goes over several short transactions: every message counted once, the conversation removed after its last', async () => {
    t = createTestDb();
    const { db } = t;
    const long = patient(db, '31600000005', Array.from({ length: 300 }, (_, i) => 1000 + i));
    const kept = patient(db, '31600000006', [5]);
    const preview = previewRetention(db, NOW);
    expect(preview).toMatchObject({ messages: 300, conversations: 1 });
    const holds: { kind: string; rows?: number }[] = [];
    // A budget of 5 ms: each batch stops taking rows after 1.5 ms, which 300 rows do not fit in.
    const result = await runRetention(db, { now: () => NOW, trigger: 'manual', budgetMs: 5, onHold: (h) => holds.push(h) });
    const batches = holds.filter((h) => h.kind === 'batch');
    expect(batches.length).toBeGreaterThan(3);
    expect(batches.reduce((sum, h) => sum + (h.rows ?? 0), 0)).toBe(300);
    expect(result.counts).toEqual(preview);
    const count = (sql: string, ...args: unknown[]) => db.prepare(sql).pluck().get(...args) as number;
    expect(count('SELECT count(*) FROM messages WHERE conversation_id = ?', long.conversationId)).toBe(0);
    expect(count('SELECT count(*) FROM conversations WHERE id = ?', long.conversationId)).toBe(0);
    expect(count('SELECT count(*) FROM messages WHERE conversation_id = ?', kept.conversationId)).toBe(1);
  });

  it('a batch that held the lock long is followed by one cut to fit the aim at its cost, not by another as large', async () => {
    t = createTestDb();
    const { db } = t;
    const long = patient(db, '31600000009', Array.from({ length: 300 }, (_, i) => 1000 + i));
    // The first message's delete takes 40 ms (as a conversation of long messages, or the thread
    // kept waiting for a core, would): a temporary trigger on this connection only.
    const first = db.prepare('SELECT min(id) FROM messages WHERE conversation_id = ?').pluck().get(long.conversationId) as number;
    db.function('stall', () => {
      const until = performance.now() + 40;
      while (performance.now() < until);
      return 0;
    });
    db.exec(`CREATE TEMP TRIGGER stall_once AFTER DELETE ON messages WHEN old.id = ${first} BEGIN SELECT stall(); END`);
    const holds: { kind: string; rows?: number; ms: number }[] = [];
    const result = await runRetention(db, { now: () => NOW, trigger: 'manual', budgetMs: 50, onHold: (h) => holds.push(h) });
    expect(result.counts).toMatchObject({ messages: 300, conversations: 1 });
    const [slow, next] = holds.filter((h) => h.kind === 'batch');
    expect(slow!.ms).toBeGreaterThan(40);
    // Aiming at a third of 50 ms at the slow batch's cost per row: well under half its rows (a
    // running average would have allowed about 70% of them).
    expect(next!.rows!).toBeLessThanOrEqual(Math.floor((50 / 3 / slow!.ms) * slow!.rows!) + 1);
    expect(next!.rows!).toBeLessThan(slow!.rows! / 2);
  });

  it('the search index merges between batches, never inside one: no committed state has its merging switched off, and a shard written by many batches keeps few segments', async () => {
    t = createTestDb();
    const { db } = t;
    const long = patient(db, '31600000007', Array.from({ length: 200 }, (_, i) => 1000 + i));
    const kept = patient(db, '31600000008', [5]);
    // The long conversation's shard starts as one segment, as after a merge.
    shardCommand(db, shardOf(long.conversationId), 'optimize');
    expect(shardSegmentCount(db, shardOf(long.conversationId))).toBe(1);
    // What every other connection sees between the run's transactions (the run pauses outside them).
    const seen: { automerge: number | null; crisismerge: number | null; secureDelete: number | null; segments: number }[] = [];
    const look = () => {
      for (const k of ALL_SHARDS) {
        seen.push({ automerge: shardSetting(db, k, 'automerge'), crisismerge: shardSetting(db, k, 'crisismerge'), secureDelete: shardSetting(db, k, 'secure-delete'), segments: shardSegmentCount(db, k) });
      }
    };
    const holds: { kind: string }[] = [];
    const result = await runRetention(db, {
      now: () => NOW,
      trigger: 'manual',
      // A budget of 5 ms: a few dozen rows per batch, so this shard is written by many batches.
      budgetMs: 5,
      pause: async () => look(),
      onHold: (h) => holds.push(h),
    });
    expect(result.counts).toMatchObject({ messages: 200, conversations: 1 });
    const batches = holds.filter((h) => h.kind === 'batch').length;
    expect(batches).toBeGreaterThan(8);
    // Automerge (FTS5's default 4) and the crisis merge (16) as they were, secure-delete on.
    for (const s of seen) {
      expect([null, 4]).toContain(s.automerge);
      expect([null, 16]).toContain(s.crisismerge);
      expect(s.secureDelete).toBe(1);
    }
    // Without the merge steps every batch would leave one more segment in this shard; FTS5's
    // leveled merging keeps fewer than 4 per level.
    expect(holds.filter((h) => h.kind === 'merge-step').length).toBeGreaterThan(0);
    expect(Math.max(...seen.map((s) => s.segments))).toBeLessThan(Math.min(batches, 12));
    // The purge at the end leaves each shard in one segment; the index still finds what was kept.
    for (const k of ALL_SHARDS) {
      expect(shardSegmentCount(db, k)).toBeLessThanOrEqual(1);
      expect(() => shardCommand(db, k, 'integrity-check', 1)).not.toThrow();
    }
    expect(searchMessages(db, { query: 'kenmerk31600000008' }).items.map((i) => i.conversationId)).toEqual([kept.conversationId]);
    expect(searchMessages(db, { query: 'kenmerk31600000007' }).items).toEqual([]);
  });

  it('prunes the audit entries past the policy behind a chained anchor, in batches inside the budget, and the chain still verifies', async () => {
    t = createTestDb();
    const { db } = t;
    // Audit policy: 5 years (1,826 days) by default. 1,500 entries from 6 years ago, then 20 from last month.
    const read = { userId: 'anna', displayName: 'Anna', role: 'receptionist', sessionId: 's_1', action: 'read' as const, method: 'messages.list', origin: 'desk', outcome: 'ok' as const };
    db.transaction(() => {
      for (let i = 0; i < 1_500; i += 1) appendAudit(db, { ...read, contactIds: [i % 7] }, NOW - 6 * 365 * DAY + i);
      for (let i = 0; i < 20; i += 1) appendAudit(db, { ...read, contactIds: [i % 7] }, NOW - 30 * DAY + i);
    })();
    const hash1500 = db.prepare('SELECT hash FROM audit_log WHERE seq = 1500').pluck().get() as string;
    expect(previewRetention(db, NOW)).toMatchObject({ audit: 1_500, auditDue: 1_500 });

    const holds: RetentionHold[] = [];
    const by = { userId: 'u_admin', displayName: 'Admin', role: 'admin', sessionId: 's_9', origin: 'desk' };
    const result = await runRetention(db, { now: () => NOW, trigger: 'manual', by, budgetMs: 50, onHold: (h) => holds.push(h) });
    expect(result.counts).toMatchObject({ audit: 1_500, auditDue: 1_500 });
    const seqs = db.prepare('SELECT seq FROM audit_log ORDER BY seq').pluck().all() as number[];
    expect(seqs[0]).toBe(1_501);
    expect(seqs).toHaveLength(21);
    expect(db.prepare('SELECT count(*) FROM audit_contacts WHERE seq <= 1500').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM audit_contacts').pluck().get()).toBe(20);

    // The pruning's own entry, after the entries kept, names who ran it and what it removed.
    const record = db.prepare('SELECT seq, user_id, action, method, reason FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; user_id: string; action: string; method: string; reason: string };
    expect(record).toMatchObject({ seq: 1_521, user_id: 'u_admin', action: 'delete', method: PRUNE_METHOD });
    expect(parsePruneReason(record.reason)).toEqual({ throughSeq: 1_500, throughHash: hash1500, count: 1_500, cutAt: NOW - 1_826 * DAY });
    expect(readAnchor(db)).toMatchObject({ throughSeq: 1_500, throughHash: hash1500, recordSeq: 1_521 });
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, entries: 21, head: { seq: 1_521 }, prunedThrough: 1_500 });

    // Several batches, each inside the budget, and the anchor written before any of them.
    const audit = holds.filter((h) => h.kind === 'audit' && (h.rows ?? 0) > 0);
    expect(audit.length).toBeGreaterThan(1);
    expect(audit.reduce((n, h) => n + h.rows!, 0)).toBe(1_500);
    for (const h of [...audit, ...holds.filter((x) => x.kind === 'anchor')]) expect(h.ms).toBeLessThan(50);
    expect(holds.findIndex((h) => h.kind === 'anchor')).toBeLessThan(holds.findIndex((h) => h.kind === 'audit'));

    // The next run finds nothing more past the policy, and writes no second pruning entry.
    const again = await runRetention(db, { now: () => NOW, trigger: 'manual', by });
    expect(again.counts.audit).toBe(0);
    expect(db.prepare('SELECT count(*) FROM audit_log WHERE method = ?').pluck().get(PRUNE_METHOD)).toBe(1);
  });

  it('stops the audit pruning before the first due entry about a patient under legal hold, says how many it kept, and prunes through once the hold is lifted', async () => {
    t = createTestDb();
    const { db } = t;
    const held = patient(db, '31600000021', [10]);
    const other = patient(db, '31600000022', [10]);
    setLegalHold(db, { contactId: held.contactId, reason: 'WGBO dossier', by: 'admin', now: NOW });
    const read = { userId: 'anna', displayName: 'Anna', role: 'receptionist', sessionId: 's_1', action: 'read' as const, method: 'messages.list', origin: 'desk', outcome: 'ok' as const };
    // 100 entries from 6 years ago, the 40th about the held patient, then 10 from last month.
    db.transaction(() => {
      for (let i = 1; i <= 100; i += 1) appendAudit(db, { ...read, contactIds: i === 40 ? [held.contactId] : [other.contactId] }, NOW - 6 * 365 * DAY + i);
      for (let i = 0; i < 10; i += 1) appendAudit(db, { ...read, contactIds: [held.contactId] }, NOW - 30 * DAY + i);
    })();
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, entries: 110 });
    expect(previewRetention(db, NOW)).toMatchObject({ audit: 39, auditDue: 100, auditHeld: 61 });

    // Planned in chunks of 16: three anchors, the last right before the held patient's entry.
    const first = await runRetention(db, { now: () => NOW, trigger: 'manual', budgetMs: 50, auditPlanChunk: 16 });
    expect(first.counts).toMatchObject({ audit: 39, auditDue: 100, auditHeld: 61 });
    expect((db.prepare('SELECT seq FROM audit_log ORDER BY seq LIMIT 1').pluck().get() as number)).toBe(40);
    expect(db.prepare('SELECT through_seq FROM audit_anchor ORDER BY through_seq').pluck().all()).toEqual([16, 32, 39]);
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, prunedThrough: 39 });
    // While the hold lasts, nothing more goes.
    const during = await runRetention(db, { now: () => NOW, trigger: 'manual', auditPlanChunk: 16 });
    expect(during.counts).toMatchObject({ audit: 0, auditHeld: 61 });

    clearLegalHold(db, held.contactId);
    expect(previewRetention(db, NOW)).toMatchObject({ audit: 100 - 39, auditHeld: 0 });
    const after = await runRetention(db, { now: () => NOW, trigger: 'manual', budgetMs: 50, auditPlanChunk: 16 });
    expect(after.counts).toMatchObject({ audit: 61, auditHeld: 0 });
    expect(db.prepare('SELECT count(*) FROM audit_log WHERE at < ?').pluck().get(NOW - 1_826 * DAY)).toBe(0);
    expect(db.prepare('SELECT count(*) FROM audit_contacts WHERE seq <= 100').pluck().get()).toBe(0);
    expect(verifyAuditChain(db)).toMatchObject({ ok: true, prunedThrough: 100 });
    expect(await verifyChain({ db, database: { path: t.path, key: t.key } }, { inlineBelow: 0, workers: 2 })).toEqual(verifyAuditChain(db));
  });

  it('a policy may not go below the legal minimum the admin picked, nor past 20 years', () => {
    t = createTestDb();
    expect(() => updateRetentionRules(t!.db, [{ kind: 'messages', days: 300, legalMinimumDays: 365 }], { by: 'admin', now: NOW })).toThrow(/shorter than the legal minimum/);
    expect(() => updateRetentionRules(t!.db, [{ kind: 'messages', days: 8000, legalMinimumDays: 0 }], { by: 'admin', now: NOW })).toThrow(/20 years/);
    const rules = updateRetentionRules(t.db, [{ kind: 'messages', days: 3650, legalMinimumDays: 3650 }], { by: 'admin', now: NOW });
    expect(rules.find((r) => r.kind === 'messages')).toMatchObject({ days: 3650, legalMinimumDays: 3650, updatedBy: 'admin' });
  });
});
