import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkChoice, dialogOptions, kindOfPath, parseChooseRequest } from './dialogs';

const dir = mkdtempSync(join(tmpdir(), 'clinic-dialogs-'));
const backup = join(dir, 'clinic-inbox-x-20250101-020000-000.cibackup');
const other = join(dir, 'notes.txt');
writeFileSync(backup, 'x');
writeFileSync(other, 'x');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const folderRequest = parseChooseRequest({ kind: 'folder', purpose: 'backup-destination', title: 'Backup folder', current: dir })!;
const fileRequest = parseChooseRequest({ kind: 'file', purpose: 'restore-backup', title: 'Backup file' })!;

describe('native dialogs: the decisions', () => {
  it('accepts only the requests the renderer may make', () => {
    expect(folderRequest).toMatchObject({ kind: 'folder', purpose: 'backup-destination' });
    expect(parseChooseRequest({ kind: 'folder', purpose: 'patient-export', title: 'Export folder' })).not.toBeNull();
    // A file dialog for a purpose that is a folder's, an unknown purpose, no title, not an object.
    for (const bad of [{ kind: 'file', purpose: 'patient-export', title: 'x' }, { kind: 'folder', purpose: 'anything', title: 'x' }, { kind: 'folder', purpose: 'backup-destination', title: '' }, 'folder', null]) {
      expect(parseChooseRequest(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it('opens at the current folder when it is a full path, else in Documents; a restore offers backup files only', () => {
    expect(dialogOptions(folderRequest, { documents: '/home/a/Documents' })).toEqual({
      title: 'Backup folder',
      defaultPath: dir,
      properties: ['openDirectory', 'createDirectory', 'dontAddToRecent'],
    });
    expect(dialogOptions({ ...folderRequest, current: 'relative/folder' }, { documents: '/home/a/Documents' }).defaultPath).toBe('/home/a/Documents');
    const file = dialogOptions(fileRequest, { documents: '/home/a/Documents' });
    expect(file).toMatchObject({ defaultPath: '/home/a/Documents', properties: ['openFile', 'dontAddToRecent'], filters: [{ extensions: ['cibackup'] }] });
  });

  it('checks the answer: cancelled is no path; a folder must be a folder that exists; a restore must be an existing .cibackup file', () => {
    expect(checkChoice(folderRequest, { canceled: true, filePaths: [] }, kindOfPath)).toEqual({ ok: true, value: { path: null } });
    expect(checkChoice(folderRequest, { canceled: false, filePaths: [dir] }, kindOfPath)).toEqual({ ok: true, value: { path: dir } });
    expect(checkChoice(folderRequest, { canceled: false, filePaths: [join(dir, 'gone')] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(checkChoice(folderRequest, { canceled: false, filePaths: [backup] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(checkChoice(folderRequest, { canceled: false, filePaths: [dir, dir] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(checkChoice(folderRequest, { canceled: false, filePaths: ['relative'] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(checkChoice(fileRequest, { canceled: false, filePaths: [backup] }, kindOfPath)).toEqual({ ok: true, value: { path: backup } });
    expect(checkChoice(fileRequest, { canceled: false, filePaths: [other] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(checkChoice(fileRequest, { canceled: false, filePaths: [join(dir, 'gone.cibackup')] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(checkChoice(fileRequest, { canceled: false, filePaths: [dir] }, kindOfPath)).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
  });
});
