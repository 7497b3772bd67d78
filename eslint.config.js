import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

/**
 * The layering of DESIGN.md, enforced: each `zones` row says which folder may not import from
 * which. An import across a forbidden line fails the lint, and the lint fails the build.
 */
const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'child_process', 'crypto', 'http', 'https', 'net', 'worker_threads'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'coverage/**', '.ci/**', 'test-results/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'] })],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './shared', from: './electron', message: 'shared/ imports only zod and itself' },
            { target: './shared', from: './relay', message: 'shared/ imports only zod and itself' },
            { target: './shared', from: './renderer', message: 'shared/ imports only zod and itself' },
            { target: './renderer', from: './electron', message: 'the renderer talks to the core only through the RPC client' },
            { target: './renderer', from: './relay', message: 'the renderer never imports the relay' },
            { target: './electron/core', from: './electron/main', message: 'the core runs without Electron' },
            { target: './electron/core', from: './electron/preload', message: 'the core runs without Electron' },
            { target: './electron/core', from: './renderer', message: 'the core never imports the renderer' },
            { target: './electron/core', from: './relay', message: 'the core talks to the relay over the wire only' },
            { target: './electron/main', from: './renderer', message: 'main never imports the renderer' },
            { target: './electron/main', from: './relay', message: 'main never imports the relay' },
            { target: './electron/preload', from: './electron/core', message: 'the preload is a thin bridge' },
            { target: './electron/preload', from: './renderer', message: 'the preload is a thin bridge' },
            { target: './relay', from: './electron', message: 'the relay imports shared/ and itself' },
            { target: './relay', from: './renderer', message: 'the relay imports shared/ and itself' },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    ignores: ['shared/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!zod$|\\.{1,2}/).*', message: 'shared/ imports only zod and itself' }] },
      ],
    },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    ignores: ['renderer/e2e/**', 'renderer/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['electron'], patterns: [{ group: nodeBuiltins, message: 'the renderer never touches Node' }] }],
    },
  },
  {
    files: ['electron/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'the core runs without Electron' }] }],
    },
  },
);
