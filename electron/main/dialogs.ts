import { statSync } from 'node:fs';
import { extname, isAbsolute } from 'node:path';
import { BACKUP_FILE_EXTENSION, ChooseRequestSchema, type ChooseRequest, type ChooseResult } from '../../shared/dialogs';

/**
 * The decisions behind the native file and folder dialogs, wired in `index.ts`: which dialog, where
 * it opens, which files it offers, and whether the answer is one the core can use. Pure, so they
 * are tested in Node; `index.ts` only calls `dialog.showOpenDialog` with the options made here.
 */

/** The subset of Electron's `OpenDialogOptions` these dialogs use (main imports no types from it here). */
export interface OpenDialogPlan {
  title: string;
  defaultPath: string;
  buttonLabel?: string;
  properties: ('openFile' | 'openDirectory' | 'createDirectory' | 'dontAddToRecent')[];
  filters?: { name: string; extensions: string[] }[];
}

/** A request from the renderer, or null when it is not one (the channel answers BAD_REQUEST). */
export function parseChooseRequest(raw: unknown): ChooseRequest | null {
  const parsed = ChooseRequestSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/**
 * The dialog for a request. It opens at the current choice when that is an absolute path (the
 * folder the backups go to now), otherwise in the user's Documents folder. A folder dialog may make
 * a new folder; a restore offers backup files only. Neither adds to the OS's recent files (a
 * patient's export folder is not something to advertise).
 */
export function dialogOptions(request: ChooseRequest, places: { documents: string }): OpenDialogPlan {
  const current = request.current?.trim();
  const defaultPath = current && isAbsolute(current) ? current : places.documents;
  if (request.kind === 'folder') return { title: request.title, defaultPath, properties: ['openDirectory', 'createDirectory', 'dontAddToRecent'] };
  return { title: request.title, defaultPath, properties: ['openFile', 'dontAddToRecent'], filters: [{ name: 'Clinic Inbox backup', extensions: [BACKUP_FILE_EXTENSION] }] };
}

export type PathKind = 'file' | 'folder' | 'missing';

/** What is at a path now (a share that dropped or a file that went is `missing`). */
export function kindOfPath(path: string): PathKind {
  try {
    const stat = statSync(path);
    return stat.isDirectory() ? 'folder' : stat.isFile() ? 'file' : 'missing';
  } catch {
    return 'missing';
  }
}

const refused = (code: 'BAD_REQUEST' | 'NOT_FOUND' | 'VALIDATION_FAILED', message: string): ChooseResult => ({ ok: false, error: { code, message } });

/**
 * What the dialog answered, checked before the renderer sees it: cancelled is `path: null`; else
 * exactly one absolute path of the right kind that exists now (a folder for a folder, a `.cibackup`
 * file for a restore), no longer than the core accepts.
 */
export function checkChoice(request: ChooseRequest, answer: { canceled: boolean; filePaths: string[] }, kindOf: (path: string) => PathKind): ChooseResult {
  if (answer.canceled || answer.filePaths.length === 0) return { ok: true, value: { path: null } };
  if (answer.filePaths.length !== 1) return refused('BAD_REQUEST', 'Choose one item.');
  const path = answer.filePaths[0]!;
  if (!isAbsolute(path) || path.length > 1000) return refused('BAD_REQUEST', 'That location cannot be used; choose another.');
  const kind = kindOf(path);
  if (request.kind === 'folder') {
    if (kind !== 'folder') return refused('NOT_FOUND', 'That folder cannot be reached; choose another.');
    return { ok: true, value: { path } };
  }
  if (extname(path).toLowerCase() !== `.${BACKUP_FILE_EXTENSION}`) return refused('VALIDATION_FAILED', `Choose a Clinic Inbox backup file (.${BACKUP_FILE_EXTENSION}).`);
  if (kind !== 'file') return refused('NOT_FOUND', 'That file cannot be read; choose another.');
  return { ok: true, value: { path } };
}
