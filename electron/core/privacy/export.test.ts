import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { PDFDocument } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeOutboundContent } from '../db/repo/media';
import { FILE_THRESHOLD } from '../media/fileStore';
import { seedConversation } from '../outbox/outboxFixtures';
import { queueMediaSend } from '../outbox/sendService';
import { startSeededCore, type SeededCore } from '../testing/seededCore';
import { createTestDb } from '../testing/testDb';
import { IT_ADMIN, rpc, signIn } from '../testing/users';
import type { Connection } from '../types';
import { collectExport } from './export';
import { PatientExportSchema } from './exportSchema';

let s: SeededCore;
let admin: Connection;
let out: string;

beforeAll(async () => {
  s = await startSeededCore();
  admin = await signIn(s.core, IT_ADMIN);
  out = mkdtempSync(join(tmpdir(), 'clinic-export-'));
});
afterAll(async () => {
  await s?.stop();
  rmSync(out, { recursive: true, force: true });
});

describe('a patient export (access and portability)', () => {
  it('writes one zip into the chosen folder whose JSON re-reads to the same data, with CSV, media and a PDF that opens', async () => {
    const [p1] = s.patients;
    await rpc(admin, 'privacy.legalHold.set', { contactId: p1.contactId, reason: 'WGBO dossier' });
    const phases: string[] = [];
    admin.on((event, payload) => void (event === 'privacy.exportProgress' && phases.push((payload as { phase: string }).phase)));
    const result = await rpc(admin, 'privacy.export', { contactId: p1.contactId, destinationDir: out, exportId: 'e1' });
    expect(result.path.startsWith(out)).toBe(true);
    expect(result.counts).toEqual({ messages: 2, media: 1, conversations: 1 });
    // Nothing but the finished file is left in the folder (no temporary name).
    expect(readdirSync(out)).toEqual([result.path.slice(out.length + 1)]);
    expect(phases).toContain('pdf');
    expect(phases.at(-1)).toBe('done');

    const files = unzipSync(readFileSync(result.path));
    expect(Object.keys(files).sort()).toEqual(['README.txt', 'conversation.pdf', 'media/' + Object.keys(files).find((f) => f.startsWith('media/'))!.slice(6), 'messages.csv', 'patient.json'].sort());
    const json = PatientExportSchema.parse(JSON.parse(new TextDecoder().decode(files['patient.json'])));
    const again = s.read((db) => collectExport(db, { contactId: p1.contactId, exportedBy: json.exportedBy, now: json.exportedAt }).data);
    expect(json).toEqual(again);
    expect(json.contact.waId).toBe('15555550101');
    expect(json.legalHold).toMatchObject({ reason: 'WGBO dossier' });
    const mediaFile = json.conversations[0]!.messages.find((m) => m.media)!.media!.file!;
    expect(new TextDecoder().decode(files[mediaFile])).toBe('%PDF-1.4 seeded');
    const csv = new TextDecoder().decode(files['messages.csv']);
    expect(csv.split('\r\n')[0]).toBe('conversation_id,message_id,sent_at,direction,type,status,author,text,attachment');
    expect(csv).toContain('Termin bitte 0');

    const pdf = await PDFDocument.load(files['conversation.pdf']!);
    expect(pdf.getPageCount()).toBeGreaterThanOrEqual(1);
    const pdfPath = join(out, 'page.pdf');
    writeFileSync(pdfPath, files['conversation.pdf']!);
    execFileSync('pdftoppm', ['-png', '-r', '80', '-f', '1', '-l', '1', '-singlefile', pdfPath, join(out, 'page1')]);
    const png = readFileSync(join(out, 'page1.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(5_000);
    if (process.env['PRIVACY_EXPORT_PNG']) writeFileSync(process.env['PRIVACY_EXPORT_PNG'], png);

    // Who exported whom is in the audit log, without content.
    const entry = s.read((db) => db.prepare(`SELECT action, contact_ids, reason FROM audit_log WHERE method = 'privacy.export' ORDER BY seq DESC LIMIT 1`).get());
    expect(entry).toEqual({ action: 'export', contact_ids: `[${p1.contactId}]`, reason: null });
  });

  it('refuses a folder that does not exist or a relative path, and writes nothing', async () => {
    const [p1] = s.patients;
    await expect(rpc(admin, 'privacy.export', { contactId: p1.contactId, destinationDir: join(out, 'missing') })).rejects.toThrow(/NOT_FOUND/);
    await expect(rpc(admin, 'privacy.export', { contactId: p1.contactId, destinationDir: 'relative/dir' })).rejects.toThrow(/VALIDATION_FAILED/);
  });

  it('retention run now writes one audit entry with the counts', async () => {
    const run = await rpc(admin, 'privacy.retention.runNow', {});
    expect(run).toMatchObject({ trigger: 'manual', outcome: 'ok' });
    const entries = s.read((db) => db.prepare(`SELECT action, reason FROM audit_log WHERE method = 'privacy.retention.run'`).all() as { action: string; reason: string }[]);
    expect(entries).toHaveLength(1);
    // This clinic's log is days old: nothing of it is past the 5-year policy, and no pruning entry is written.
    expect(entries[0]!.reason).toMatch(/^retention \(manual\): \d+ messages, \d+ conversations, \d+ files removed; 0 audit entries past policy pruned, 0 kept because of a legal hold;/);
    expect(s.read((db) => db.prepare(`SELECT count(*) FROM audit_log WHERE method = 'audit.pruned'`).pluck().get())).toBe(0);
    expect(await rpc(admin, 'privacy.retention.get', {})).toMatchObject({ lastRun: { id: run.id } });
  });
});

describe('a patient export of an image kept as a file beside the database', () => {
  it('carries the image\u2019s bytes, read and checked through its file', () => {
    const t = createTestDb();
    try {
      const { conversationId, contactId } = seedConversation(t.db, { waId: '15555550303', phoneNumberId: '110000000000001', lastInboundAt: 1 });
      const bytes = randomBytes(FILE_THRESHOLD + 1);
      const { mediaRowId } = queueMediaSend(t.db, { conversationId, bytes, mimeType: 'image/jpeg', filename: 'wond.jpg', now: 2 });
      storeOutboundContent(t.db, { mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: 2 });
      expect(t.db.prepare('SELECT file_name IS NOT NULL FROM media WHERE id = ?').pluck().get(mediaRowId)).toBe(1);
      const { media } = collectExport(t.db, { contactId, exportedBy: 'u_admin', now: 3 });
      expect(media).toHaveLength(1);
      expect(Buffer.from(media[0]!.bytes).equals(bytes)).toBe(true);
    } finally {
      t.cleanup();
    }
  });
});
