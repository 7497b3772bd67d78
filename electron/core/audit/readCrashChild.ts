// Test-only child process for readCommits.test.ts: starts the real core on a data folder whose
// keys are in the keychain, signs a receptionist in, opens a thread, and kills itself with SIGKILL
// the moment the answer is in hand — before the audit flush timer could run.
import { writeSync } from 'node:fs';
import pino from 'pino';
import { createCore } from '../createCore';
import { TEST_HASH_COST, TEST_PASSWORD } from '../testing/users';

const [dataDir, username, conversationId] = process.argv.slice(2);
if (!dataDir || !username || !conversationId) {
  process.stderr.write('usage: readCrashChild <data-dir> <username> <conversation-id>\n');
  process.exit(2);
}

const core = await createCore({ dataDir, logger: pino({ level: 'silent' }), passwordHashCost: TEST_HASH_COST, graph: { baseUrl: 'http://127.0.0.1:9' }, policyPath: null });
const connection = core.connect('desk-crash');
const signedIn = await connection.dispatch('auth.signIn', { username, password: TEST_PASSWORD });
if (!signedIn.ok) throw new Error(`sign-in failed: ${signedIn.error.code}`);
const opened = await connection.dispatch('messages.list', { conversationId: Number(conversationId), limit: 50 });
if (!opened.ok) throw new Error(`messages.list failed: ${opened.error.code}`);
// Synchronous, so the line is in the pipe before the process dies.
writeSync(1, `OPENED ${(opened.value as { items: unknown[] }).items.length}\n`);
process.kill(process.pid, 'SIGKILL');
