// Outbox: what a receptionist waits for when pressing Send (storing message + outbox row in one
// fsynced SQLCipher transaction) against a bare single-row insert with the same driver and pragmas,
// and how fast the worker drains a backlog through the Graph simulator against bare client calls
// to the same simulator in the same run. Targets: enqueue p95 under 25 ms; drain at least 0.5 of
// the bare client's rate (the outbox adds two small commits per send).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase } from '../electron/core/db/open';
import { createGraphClient } from '../electron/core/graph/client';
import { seedConversation } from '../electron/core/outbox/outboxFixtures';
import { sendText } from '../electron/core/outbox/sendService';
import { createOutboxWorker } from '../electron/core/outbox/worker';
import { createGraphSimulator } from '../electron/core/testing/graphSimulator';

const N = Number(process.env['BENCH_OUTBOX_MESSAGES'] ?? 400);
const TOKEN = 'EAAbench-token-00000000';
const PHONE = '110000000000001';
const logger = pino({ level: 'silent' });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const dir = mkdtempSync(join(tmpdir(), 'clinic-bench-outbox-'));
const sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE, wabaId: '100000000000001', enforceWindow: false });
try {
  await sim.listen();
  const client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });

  // Baseline 1: bare inserts, one fsynced transaction each.
  const { db: bare } = openDatabase({ path: join(dir, 'bare.db'), key: randomBytes(32) });
  const bareConv = seedConversation(bare, { waId: '15555550100', phoneNumberId: PHONE, lastInboundAt: Date.now() }).conversationId;
  const ins = bare.prepare(
    `INSERT INTO messages (conversation_id, direction, type, text, content_json, sent_at, received_at, status) VALUES (?, 'outbound', 'text', ?, '{}', ?, ?, 'pending')`,
  );
  const bareLat: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    bare.transaction(() => ins.run(bareConv, `Nachricht ${i}`, Date.now(), Date.now()))();
    bareLat.push(performance.now() - t0);
  }
  bare.close();

  // Outbox enqueue: message + outbox row + conversation update, one transaction.
  const { db } = openDatabase({ path: join(dir, 'outbox.db'), key: randomBytes(32) });
  const conversations = Array.from({ length: 10 }, (_, i) =>
    seedConversation(db, { waId: `155555501${String(i).padStart(2, '0')}`, phoneNumberId: PHONE, lastInboundAt: Date.now() }).conversationId,
  );
  const enqLat: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    sendText(db, { conversationId: conversations[i % conversations.length]!, text: `Guten Tag, Ihr Termin ${i} ist bestätigt.`, now: Date.now() });
    enqLat.push(performance.now() - t0);
  }

  // Baseline 2: bare client sends to the same simulator.
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await client.sendText({ phoneNumberId: PHONE, to: '15555550100', body: `Nachricht ${i}` });
  const bareSendMs = performance.now() - t0;

  // Outbox drain.
  const worker = createOutboxWorker({ db, client, getAccessToken: async () => TOKEN, logger });
  t0 = performance.now();
  while ((await worker.runOnce()) > 0);
  const drainMs = performance.now() - t0;
  const sent = (db.prepare(`SELECT count(*) AS n FROM outbox WHERE state = 'sent'`).get() as { n: number }).n;
  db.close();
  if (sent !== N) throw new Error(`outbox sent ${sent} of ${N}`);

  bareLat.sort((a, b) => a - b);
  enqLat.sort((a, b) => a - b);
  const rows = [
    ['bare insert (1 row, fsync)', pct(bareLat, 50), pct(bareLat, 95), '', ''],
    ['outbox enqueue (msg+outbox+conv)', pct(enqLat, 50), pct(enqLat, 95), '', ''],
    ['bare client.sendText', '', '', (N / bareSendMs) * 1000, ''],
    ['outbox worker drain', '', '', (N / drainMs) * 1000, bareSendMs / drainMs],
  ];
  const f = (v: unknown) => (typeof v === 'number' ? v.toFixed(2) : String(v));
  process.stdout.write(`outbox, ${N} messages\n`);
  process.stdout.write(`${'case'.padEnd(36)}${'p50 ms'.padStart(10)}${'p95 ms'.padStart(10)}${'msg/s'.padStart(10)}${'vs bare'.padStart(10)}\n`);
  for (const r of rows) process.stdout.write(`${String(r[0]).padEnd(36)}${r.slice(1).map((v) => f(v).padStart(10)).join('')}\n`);
  const ok = pct(enqLat, 95) < 25 && bareSendMs / drainMs >= 0.5;
  process.stdout.write(`targets (enqueue p95 < 25 ms, drain >= 0.5x bare): ${ok ? 'met' : 'MISSED'}\n`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
}
