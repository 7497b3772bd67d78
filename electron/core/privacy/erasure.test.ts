import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decryptedPages, RESERVE } from '../testing/decryptedPages';
import { createTestDb, type TestDb } from '../testing/testDb';
import { openDatabase } from '../db/open';
import { insertOutboundMedia, storeOutboundContent } from '../db/repo/media';
import { mediaDirOf, readMediaFile } from '../media/fileStore';
import { eraseInWorker } from './runErasure';
import { searchMessages } from '../db/repo/search';
import { ALL_SHARDS, shardCommand, shardOf, shardTable } from '../db/searchShards';
import { checkpointAfterErasure, eraseContact, hashIdentifier, ledgerKey, readLedger, reapplyErasures } from './erasure';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

const PATIENT = { waId: '4915178200461', name: 'Quirina Vandermolen', words: 'zebraquartz xylophonic', media: Buffer.from('MEDIA-BYTES-OF-THE-PATIENT-'.repeat(400)) };
const OTHER = { waId: '4915178200999', name: 'Otto Kontrolle', words: 'kontrollwort bleibt' };

function seed(db: TestDb['db']): void {
  const contact = db.prepare('INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, 1, 1)');
  const conversation = db.prepare(`INSERT INTO conversations (id, contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (?, ?, '110', 5, 1, 1)`);
  const message = db.prepare(
    `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, ?, 'inbound', ?, ?, '{}', 5, 6, 'received')`,
  );
  contact.run(1, PATIENT.waId, PATIENT.name);
  contact.run(2, OTHER.waId, OTHER.name);
  conversation.run(1, 1);
  // Conversation 17 shares the patient's index shard (17 % 16 = 1), whose merge must keep it.
  conversation.run(17, 2);
  // Enough messages that the patient's rows fill whole pages and share others with the control's.
  for (let i = 0; i < 200; i += 1) {
    message.run(1 + i * 2, 1, `wamid.P${i}`, 'text', `Termin ${PATIENT.words} ${PATIENT.name} ${i}`);
    message.run(2 + i * 2, 17, `wamid.O${i}`, 'text', `Rezept ${OTHER.words} ${i}`);
  }
  message.run(1000, 1, 'wamid.PIMG', 'image', null);
  db.prepare(`INSERT INTO media (media_id, message_id, mime_type, state, content, created_at, updated_at) VALUES ('m1', 1000, 'image/jpeg', 'stored', ?, 1, 1)`).run(PATIENT.media);
  db.pragma('wal_checkpoint(TRUNCATE)');
}

describe('erasure of one patient', () => {
  it('leaves none of their text, number, name or media bytes in any decrypted page of the database file or WAL', async () => {
    t = createTestDb();
    const { db, path, key } = t;
    seed(db);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const scan = (needle: string | Buffer) => decryptedPages(path, key, pageSize).filter((p) => p.includes(needle)).length;

    // The scan reads real plaintext: the header decrypts, and the patient is there before the erasure.
    const header = decryptedPages(path, key, pageSize)[0]!;
    expect(header.readUInt16BE(0)).toBe(pageSize); // header bytes 16–17: the page size
    expect(header[4]).toBe(RESERVE); // header byte 20: reserved bytes per page
    for (const needle of [PATIENT.waId, PATIENT.name, 'zebraquartz', 'xylophonic', PATIENT.media.subarray(0, 54)]) expect(scan(needle), String(needle)).toBeGreaterThan(0);

    // The old pages in the file still hold the patient until the checkpoint after the commit.
    db.pragma('wal_autocheckpoint = 0');
    const entry = db.transaction(() => eraseContact(db, { contactId: 1, erasedBy: 'u_admin', now: 10, databaseKey: key }))();
    expect(db.prepare(`SELECT count(*) FROM ${shardTable(shardOf(1))} WHERE ${shardTable(shardOf(1))} MATCH 'zebraquartz'`).pluck().get()).toBe(0);
    expect(scan('zebraquartz')).toBeGreaterThan(0);
    const checkpoint = checkpointAfterErasure(db);
    expect(checkpoint.complete).toBe(true);
    // What it wrote back is what the erasure wrote, at least the patient's rows and media pages.
    expect(checkpoint.pages).toBeGreaterThan(Math.ceil(PATIENT.media.length / pageSize));

    expect(existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`).length : 0).toBe(0);
    for (const needle of [PATIENT.waId, PATIENT.name, 'zebraquartz', 'xylophonic', PATIENT.media.subarray(0, 54), 'wamid.P1']) expect(scan(needle), `after erasure: ${String(needle).slice(0, 30)}`).toBe(0);
    // The other patient is untouched, and found by the same scan.
    expect(scan(OTHER.waId)).toBeGreaterThan(0);
    expect(scan('kontrollwort')).toBeGreaterThan(0);
    expect(db.prepare('SELECT count(*) FROM messages WHERE conversation_id = 17').pluck().get()).toBe(200);
    expect(searchMessages(db, { query: 'zebraquartz' }).items).toEqual([]);
    expect(searchMessages(db, { query: 'kontrollwort' }).items).toHaveLength(30);
    // The index agrees with what is left, shard by shard.
    for (const k of ALL_SHARDS) expect(() => shardCommand(db, k, 'integrity-check', 1)).not.toThrow();
    // The ledger keeps a keyed hash, never the number.
    expect(entry.identifiersHash).toEqual([hashIdentifier(ledgerKey(key), `wa:${PATIENT.waId}`)]);
    expect(readLedger(db)).toEqual([entry]);
  });

  it('says so when a reader keeps the checkpoint from emptying the WAL, and the next one finishes it', () => {
    t = createTestDb();
    const { db, path, key } = t;
    seed(db);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const scan = (needle: string) => decryptedPages(path, key, pageSize).filter((p) => p.includes(needle)).length;
    // A window's connection in the middle of a read from before the erasure (its snapshot needs the old pages).
    const reader = openDatabase({ path, key, migrate: false }).db;
    try {
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM messages').get();
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('busy_timeout = 50');
      db.transaction(() => eraseContact(db, { contactId: 1, erasedBy: 'u_admin', now: 10, databaseKey: key }))();
      expect(checkpointAfterErasure(db).complete).toBe(false);
      expect(scan('zebraquartz')).toBeGreaterThan(0);
      reader.exec('COMMIT');
      expect(checkpointAfterErasure(db).complete).toBe(true);
      expect(scan('zebraquartz')).toBe(0);
    } finally {
      reader.close();
    }
  });

  it('through the erasure worker, unlinks the patient\u2019s file and leaves no key in any page that opens a copy of it', async () => {
    t = createTestDb();
    const { db, path, key } = t;
    seed(db);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const fileBacked = (id: number, conversationId: number) => {
      db.prepare(`INSERT INTO messages (id, conversation_id, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, ?, 'outbound', 'image', NULL, '{"type":"image","image":{}}', 7, 7, 'pending')`).run(id, conversationId);
      const mediaRowId = insertOutboundMedia(db, { messageId: id, size: 300_000, mimeType: 'image/jpeg', filename: null, now: 7 });
      const bytes = randomBytes(300_000);
      storeOutboundContent(db, { mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: 7 });
      return db.prepare('SELECT id, file_name, file_key FROM media WHERE id = ?').get(mediaRowId) as { id: number; file_name: string; file_key: Buffer };
    };
    const patients = fileBacked(2001, 1);
    const others = fileBacked(2002, 17);
    const dir = mediaDirOf(path);
    const copy = readFileSync(join(dir, patients.file_name));
    db.pragma('wal_checkpoint(TRUNCATE)');
    const scan = (needle: Buffer) => decryptedPages(path, key, pageSize).filter((p) => p.includes(needle)).length;
    expect(scan(patients.file_key)).toBeGreaterThan(0);

    await eraseInWorker({ path, key: key.toString('hex'), contactId: 1, erasedBy: 'u_admin', now: 10 });
    expect(readdirSync(dir)).toEqual([others.file_name]);
    expect(scan(patients.file_key)).toBe(0);
    // Every 32-byte value left in the database, tried as the key of the copy: none opens it.
    const aside = mkdtempSync(join(tmpdir(), 'erased-copy-'));
    try {
      writeFileSync(join(aside, patients.file_name), copy);
      const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'`).pluck().all() as string[];
      const candidates = tables.flatMap((table) =>
        (db.prepare(`SELECT * FROM "${table}"`).raw().all() as unknown[][]).flat().filter((v): v is Buffer => Buffer.isBuffer(v) && v.length === 32),
      );
      expect(candidates.some((c) => c.equals(others.file_key))).toBe(true);
      for (const candidate of candidates) expect(() => readMediaFile(aside, patients.id, patients.file_name, candidate)).toThrow(/damaged or was altered/);
    } finally {
      rmSync(aside, { recursive: true, force: true });
    }
  });

  it('refuses an unknown contact and changes nothing', () => {
    t = createTestDb();
    const { db, key } = t;
    seed(db);
    expect(() => eraseContact(db, { contactId: 99, erasedBy: 'u_admin', now: 10, databaseKey: key })).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(401);
    expect(readLedger(db)).toEqual([]);
  });

  it('re-applies a ledger to an older copy: the patient is erased again once, the entry added once', () => {
    t = createTestDb();
    const { db, key } = t;
    seed(db);
    const entry = { identifiersHash: [hashIdentifier(ledgerKey(key), `wa:${PATIENT.waId}`)], erasedAt: 10, erasedBy: 'u_admin' };
    expect(reapplyErasures(db, [[entry], [entry]], key)).toBe(1);
    expect(db.prepare('SELECT count(*) FROM contacts').pluck().get()).toBe(1);
    expect(readLedger(db)).toEqual([entry]);
    expect(reapplyErasures(db, [[entry]], key)).toBe(0);
  });
});
