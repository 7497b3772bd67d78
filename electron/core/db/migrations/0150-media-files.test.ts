import { afterEach, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { migrate, schemaVersion } from '../migrate';
import { readMediaBytes } from '../repo/media';

let t: TestDb | undefined;
afterEach(() => t?.cleanup());

describe('migration 0150-media-files', () => {
  it('keeps a version-140 inline file readable and lists the file of a row deleted or cleared afterwards', () => {
    t = createTestDb({ version: 140 });
    const { db } = t;
    const bytes = Buffer.from('inline image bytes from before the migration');
    db.prepare(`INSERT INTO media (id, media_id, mime_type, state, content, created_at, updated_at) VALUES (1, 'm1', 'image/jpeg', 'stored', ?, 1, 1)`).run(bytes);

    expect(migrate(db, { target: 150 }).applied).toEqual([150]);
    expect(schemaVersion(db)).toBe(150);
    expect(readMediaBytes(db, 1)?.equals(bytes)).toBe(true);
    expect(db.prepare('SELECT file_name, file_key FROM media WHERE id = 1').get()).toEqual({ file_name: null, file_key: null });
    // Retention's walk over stored bytes finds both kinds through the same index.
    db.prepare(`INSERT INTO media (id, mime_type, state, file_name, file_key, created_at, updated_at) VALUES (2, 'image/jpeg', 'stored', 'aa', x'00', 1, 1), (3, 'image/jpeg', 'stored', 'bb', x'00', 1, 1)`).run();
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM media WHERE (content IS NOT NULL OR file_name IS NOT NULL) AND created_at < 5`).all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toContain('media_by_age');

    db.prepare('DELETE FROM media WHERE id IN (1, 2)').run();
    db.prepare('UPDATE media SET file_name = NULL, file_key = NULL WHERE id = 3').run();
    expect(db.prepare('SELECT name FROM media_file_trash ORDER BY name').pluck().all()).toEqual(['aa', 'bb']);
  });
});
