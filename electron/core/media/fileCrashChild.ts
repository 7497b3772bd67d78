// Test-only child process for fileCrash.test.ts: queues outgoing files and stores each as the
// writer thread does (its own file, then the row's commit), without end, so the test can SIGKILL it
// at any point of that sequence, between a file's fsync and its row's commit included.
import { createHash, randomBytes } from 'node:crypto';
import { openWorkerConnection } from '../db/cipher';
import { storeOutboundContent } from '../db/repo/media';
import { queueMediaSend } from '../outbox/sendService';

const [dbPath, conversation] = process.argv.slice(2);
const key = process.env.TEST_DB_KEY_HEX ?? '';
if (!dbPath || !conversation || key.length !== 64) {
  process.stderr.write('usage: fileCrashChild <db> <conversation id> (TEST_DB_KEY_HEX)\n');
  process.exit(2);
}
const db = openWorkerConnection(dbPath, key, 'FULL');
const conversationId = Number(conversation);
for (let i = 0; ; i += 1) {
  const bytes = randomBytes(300_000 + (i % 7) * 1000);
  const { mediaRowId } = queueMediaSend(db, { conversationId, bytes, mimeType: 'image/jpeg', filename: `scan-${i}.jpg`, now: Date.now() });
  storeOutboundContent(db, { mediaRowId, bytes, sha256Hex: createHash('sha256').update(bytes).digest('hex'), now: Date.now() });
  if (i === 2) process.stdout.write('STORING\n');
}
