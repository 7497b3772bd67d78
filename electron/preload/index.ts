import { contextBridge, ipcRenderer } from 'electron';

/** The app's own IPC channels; the renderer reaches nothing else. */
const INVOKE_CHANNEL = 'clinic-inbox:invoke';
const EVENT_CHANNEL = 'clinic-inbox:event';

contextBridge.exposeInMainWorld('clinicInbox', {
  invoke: (method: string, params: unknown): Promise<unknown> => ipcRenderer.invoke(INVOKE_CHANNEL, method, params),
  on: (listener: (event: string, payload: unknown) => void): (() => void) => {
    const handler = (_e: unknown, event: string, payload: unknown): void => listener(event, payload);
    ipcRenderer.on(EVENT_CHANNEL, handler);
    return () => ipcRenderer.removeListener(EVENT_CHANNEL, handler);
  },
});
