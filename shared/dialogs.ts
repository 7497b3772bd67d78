import { z } from 'zod';
import { AppErrorSchema } from './errors';

/**
 * The shell's native file and folder dialogs, offered to the renderer through the preload
 * (`chooseFolder`, `chooseFile`) on the app's own channel. The renderer says what the choice is for
 * and passes the dialog's title in the user's language; the shell decides the dialog's options and
 * checks the answer (`electron/main/dialogs.ts`). The web harness has no such bridge: there the
 * renderer keeps its typed path.
 */
export const CHOOSE_CHANNEL = 'clinic-inbox:choose';

/** A backup file's extension, without the dot (the core's `BACKUP_EXTENSION` is built from it). */
export const BACKUP_FILE_EXTENSION = 'cibackup';

const Title = z.string().trim().min(1).max(200);
const Current = z.string().max(1000).optional();

export const ChooseRequestSchema = z.discriminatedUnion('kind', [
  /** Where backups go; where a patient's export is written. */
  z.object({ kind: z.literal('folder'), purpose: z.enum(['backup-destination', 'patient-export']), title: Title, current: Current }),
  /** A backup to restore on the first-run screen. */
  z.object({ kind: z.literal('file'), purpose: z.literal('restore-backup'), title: Title, current: Current }),
]);
export type ChooseRequest = z.infer<typeof ChooseRequestSchema>;

/** `path` is null when the user cancelled. */
export const ChooseResultSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), value: z.object({ path: z.string().min(1).max(1000).nullable() }) }),
  z.object({ ok: z.literal(false), error: AppErrorSchema }),
]);
export type ChooseResult = z.infer<typeof ChooseResultSchema>;
