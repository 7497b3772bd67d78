import { contextBridge, ipcRenderer } from 'electron';

/** The app's own IPC channels; the renderer reaches nothing else. */
const INVOKE_CHANNEL = 'clinic-inbox:invoke';
const EVENT_CHANNEL = 'clinic-inbox:event';
/** The shell's native folder and file dialogs (`shared/dialogs.ts`; main checks every request). */
const CHOOSE_CHANNEL = 'clinic-inbox:choose';

contextBridge.exposeInMainWorld('clinicInbox', {
  invoke: (method: string, params: unknown): Promise<unknown> => ipcRenderer.invoke(INVOKE_CHANNEL, method, params),
  on: (listener: (event: string, payload: unknown) => void): (() => void) => {
    const handler = (_e: unknown, event: string, payload: unknown): void => listener(event, payload);
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => ipcRenderer.removeListener(EVENT_CHANNEL, handler);
  },
  chooseFolder: (request: object): Promise<unknown> => ipcRenderer.invoke(CHOOSE_CHANNEL, { ...request, kind: 'folder' }),
  chooseFile: (request: object): Promise<unknown> => ipcRenderer.invoke(CHOOSE_CHANNEL, { ...request, kind: 'file' }),
});
