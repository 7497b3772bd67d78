import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

const nativeModules = ['better-sqlite3-multiple-ciphers', 'keytar'];

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        // The backup worker thread is its own entry, beside coreProcess.js (runWorker.ts loads ./worker.js).
        input: { index: resolve('electron/main/index.ts'), coreProcess: resolve('electron/main/coreProcess.ts'), worker: resolve('electron/core/backup/worker.ts') },
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
