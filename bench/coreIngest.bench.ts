// Ingest: a backlog waiting at a real relay, delivered to a real core (open envelope, parse,
// one transaction per delivery, ack), against raw inserts of the same rows with the same driver
// into the same kind of database in the same run. The backlog is mixed (issue 9): every message
// shape in turn — text, location, replies, forms, orders, ads, cards, stickers, voice, video,
// documents, unsupported, unknown types, echoes from the clinic's phone and call events. Target: at
// least 0.5 of raw.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayProcess } from '../relay/testing/relayProcess';
import { messageShapes } from '../electron/core/testing/messageShapes';
import { openDatabase } from '../electron/core/db/open';
import { startPairedCore, tempDataDir, waitFor, quietLogger } from '../tests/helpers';
import { createCore } from '../electron/core/createCore';

const MESSAGES = Number(process.env['BENCH_INGEST_MESSAGES'] ?? 50_000);
const PER_WEBHOOK = 10; // Meta batches bursts; ten messages per POST
const PHONE = '110000000000001';

/** One change per shape (edit and revoke events left out: they change a row rather than add one). */
const TEMPLATES = messageShapes(1760000000)
  .filter((s) => s.name !== 'edit' && s.name !== 'revoke')
  .map((s) => s.bodies[s.bodies.length - 1]!)
  .map((b) => (b as { entry: { changes: { field: string; value: Record<string, unknown> }[] }[] }).entry[0]!.changes[0]!);

function row(i: number) {
  return {
    wamid: `wamid.BENCH-${i}`,
    from: `49151${String(i % 2000).padStart(7, '0')}`,
    name: `Patient ${i % 2000}`,
    text: `Guten Morgen, ich möchte meinen Termin Nummer ${i} verschieben.`,
    at: 1760000000 + i,
  };
}

/** Item i of the backlog: shape i mod n, with its own ids, sender and time. */
function changeFor(i: number): { field: string; value: Record<string, unknown> } {
  const r = row(i);
  const t = TEMPLATES[i % TEMPLATES.length]!;
  const json = JSON.stringify(t)
    .replaceAll('15555550101', r.from)
    .replace(/"(wamid|wacid)\.SHAPE-[^"]+"/g, `"$1.BENCH-${i}"`)
    .replace(/"timestamp":"\d+"/g, `"timestamp":"${r.at}"`)
    .replace(/"Zoë Müller"/g, JSON.stringify(r.name));
  return JSON.parse(json) as { field: string; value: Record<string, unknown> };
}

function batchWebhook(changes: unknown[]): string {
  return JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '100000000000001', changes }] });
}

async function fillRelay(relay: RelayProcess): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < MESSAGES) {
        const first = next;
        next += PER_WEBHOOK;
        const changes = [];
        for (let i = first; i < Math.min(first + PER_WEBHOOK, MESSAGES); i++) changes.push(changeFor(i));
        const res = await relay.postWebhook(batchWebhook(changes));
        if (res.status !== 200) throw new Error(`relay answered ${res.status}`);
      }
    }),
  );
}

/** The bare baseline: the same rows, same driver, same cipher and pragmas, same transaction size. */
function rawInserts(): number {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-bench-raw-'));
  try {
    const { db } = openDatabase({ path: join(dir, 'raw.db'), key: randomBytes(32) });
    const contact = db.prepare('INSERT INTO contacts (wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (wa_id) DO UPDATE SET updated_at = excluded.updated_at RETURNING id');
    const conversation = db.prepare(
      `INSERT INTO conversations (contact_id, phone_number_id, last_activity_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (contact_id, phone_number_id) DO UPDATE SET last_activity_at = excluded.last_activity_at RETURNING id`,
    );
    const message = db.prepare(
      `INSERT INTO messages (conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
       VALUES (?, ?, 'inbound', ?, ?, ?, ?, ?, 'received')`,
    );
    // The same rows: each item's message (or call) object as content, its text where it has one.
    const rows = Array.from({ length: MESSAGES }, (_, i) => {
      const value = changeFor(i).value as { messages?: Record<string, unknown>[]; message_echoes?: Record<string, unknown>[]; calls?: Record<string, unknown>[] };
      const m = (value.messages ?? value.message_echoes ?? value.calls)![0]!;
      const text = (m['text'] as { body?: string } | undefined)?.body ?? null;
      return { type: String(m['type'] ?? 'call'), text, content: JSON.stringify(m) };
    });
    const delivery = db.transaction((first: number) => {
      for (let i = first; i < Math.min(first + PER_WEBHOOK, MESSAGES); i++) {
        const r = row(i);
        const x = rows[i]!;
        const c = contact.get(r.from, r.name, 1, 1) as { id: number };
        const v = conversation.get(c.id, PHONE, r.at, 1, 1) as { id: number };
        message.run(v.id, r.wamid, x.type, x.text, x.content, r.at * 1000, Date.now());
      }
    });
    const t0 = performance.now();
    for (let first = 0; first < MESSAGES; first += PER_WEBHOOK) delivery.immediate(first);
    const seconds = (performance.now() - t0) / 1000;
    db.close();
    return MESSAGES / seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const relay = await RelayProcess.start();
  const data = tempDataDir();
  try {
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: [PHONE] });
    const paired = await startPairedCore(relay, 'clinic-a', { dataDir: data.dir });
    await paired.close();
    const f0 = performance.now();
    await fillRelay(relay);
    const fillSeconds = (performance.now() - f0) / 1000;

    const t0 = performance.now();
    const core = await createCore({ dataDir: data.dir, logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' } });
    await waitFor('backlog drained', () => relay.queued('clinic-a') === 0, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    await core.close();
    const ingest = MESSAGES / seconds;
    const raw = rawInserts();

    const ratio = ingest / raw;
    console.table([
      { measure: 'relay intake while filling (messages/s)', value: Math.round(MESSAGES / fillSeconds), baseline: '—', target: '—' },
      { measure: 'backlog → committed and acked (messages/s)', value: Math.round(ingest), baseline: Math.round(raw), target: '≥ 0.5 × raw' },
      { measure: 'ratio to raw inserts', value: ratio.toFixed(2), baseline: '1.00', target: ratio >= 0.5 ? 'met' : 'MISSED' },
    ]);
    console.log(`items: ${MESSAGES} (${TEMPLATES.length} shapes in turn) in ${MESSAGES / PER_WEBHOOK} deliveries; core start included in the ingest time`);
  } finally {
    await relay.stop();
    data.remove();
  }
}

await main();
