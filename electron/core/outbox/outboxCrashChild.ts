// Test-only child process for outboxCrash.test.ts: opens a real SQLCipher file, optionally
// enqueues one reply, runs the outbox worker against the Graph simulator, and reports on stdout
// so the test can SIGKILL it at the moment that matters.
import pino from 'pino';
import { openDatabase } from '../db/open';
import { createGraphClient } from '../graph/client';
import { seedConversation } from './outboxFixtures';
import { sendText } from './sendService';
import { createOutboxWorker } from './worker';

const [mode, dbPath, graphUrl] = process.argv.slice(2);
const key = Buffer.from(process.env.TEST_DB_KEY_HEX ?? '', 'hex');
if (!mode || !dbPath || !graphUrl || key.length !== 32) {
  process.stderr.write('usage: outboxCrashChild <enqueue|enqueue-only|resume> <db> <graph-url> (TEST_DB_KEY_HEX)\n');
  process.exit(2);
}

const token = 'EAAcrash-test-token-000';
const { db } = openDatabase({ path: dbPath, key });
const say = (line: string) => process.stdout.write(`${line}\n`);

if (mode === 'enqueue' || mode === 'enqueue-only') {
  const now = Date.now();
  const { conversationId } = seedConversation(db, { waId: '15555550101', phoneNumberId: '110000000000001', lastInboundAt: now - 60_000 });
  const { messageId } = sendText(db, { conversationId, text: 'Ihr Befund ist da.', now });
  say(`ENQUEUED ${messageId}`);
}

if (mode === 'enqueue-only') {
  say('IDLE');
  setInterval(() => undefined, 60_000);
} else {
  const logger = pino({ level: 'silent' });
  const client = createGraphClient({ baseUrl: graphUrl, apiVersion: 'v23.0', getAccessToken: async () => token, logger, timeoutMs: 30_000 });
  const worker = createOutboxWorker({
    db,
    client,
    getAccessToken: async () => token,
    logger,
    policy: { pollMs: 100 },
    onStatusChanged: (c) => say(`STATUS ${c.messageId} ${c.status}`),
  });
  worker.start();
  void worker.runOnce().then(() => say('PASSED'));
  // The worker's timers do not hold the process open (the core's server does that); this does.
  setInterval(() => undefined, 60_000);
}
