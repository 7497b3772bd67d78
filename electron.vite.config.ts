import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

const nativeModules = ['better-sqlite3-multiple-ciphers', 'keytar'];

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        // Worker threads are entries of their own, beside the bundle that starts them: each source file
        // is named as its entry (`startWorkerThread` in electron/core/workerThread.ts loads `./<name>.js`
        // next to coreProcess.js); electron/core/workerEntries.test.ts checks the two lists agree.
        input: {
          index: resolve('electron/main/index.ts'),
          coreProcess: resolve('electron/main/coreProcess.ts'),
          backupWorker: resolve('electron/core/backup/backupWorker.ts'),
          chainWorker: resolve('electron/core/audit/chainWorker.ts'),
          eventsWorker: resolve('electron/core/events/eventsWorker.ts'),
          erasureWorker: resolve('electron/core/privacy/erasureWorker.ts'),
          mediaWriter: resolve('electron/core/media/mediaWriter.ts'),
        },
        external: nativeModules,
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { index: resolve('electron/preload/index.ts') },
        // A sandboxed preload cannot be an ES module.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'renderer',
    plugins: [react()],
    build: {
      outDir: 'out/renderer',
      rollupOptions: { input: { index: resolve('renderer/index.html') } },
    },
  },
});
