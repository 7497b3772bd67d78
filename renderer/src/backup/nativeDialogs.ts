import { ChooseResultSchema } from '../../../shared/dialogs';
import { RpcError } from '../rpc';

/** Opens the shell's dialog titled `title` (at `current` when it is a full path); null when cancelled. */
export type Chooser = (title: string, current?: string) => Promise<string | null>;

export type ChoosePurpose = 'backup-destination' | 'patient-export' | 'restore-backup';

/**
 * The Electron shell's native folder or file dialog for this purpose, or null where there is none
 * (the web harness): there the screens keep their typed path. The shell checks what was chosen
 * (a folder that exists, a `.cibackup` file) before it answers.
 */
export function nativeChooser(purpose: ChoosePurpose): Chooser | null {
  const bridge = window.clinicInbox;
  const open = purpose === 'restore-backup' ? bridge?.chooseFile : bridge?.chooseFolder;
  if (!bridge || !open) return null;
  return async (title, current) => {
    const parsed = ChooseResultSchema.safeParse(await open.call(bridge, { purpose, title, ...(current?.trim() ? { current: current.trim() } : {}) }));
    if (!parsed.success) throw new RpcError('UNAVAILABLE', 'The app answered in a form this window does not understand.');
    if (!parsed.data.ok) throw new RpcError(parsed.data.error.code, parsed.data.error.message);
    return parsed.data.value.path;
  };
}
