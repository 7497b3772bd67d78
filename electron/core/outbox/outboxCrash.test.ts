import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open';
import { outboxCounts } from '../db/repo/outbox';
import { createGraphSimulator, type GraphSimulator } from '../testing/graphSimulator';
import { storeUnappliedStatus } from './outboxFixtures';

const CHILD = join(import.meta.dirname, 'outboxCrashChild.ts');

interface Child {
  proc: ChildProcess;
  lines: string[];
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function startChild(mode: string, dbPath: string, graphUrl: string, key: Buffer): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, dbPath, graphUrl], {
    env: { ...process.env, TEST_DB_KEY_HEX: key.toString('hex') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  return {
    proc,
    lines,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child never printed ${pattern}; saw ${JSON.stringify(lines)}`)), timeoutMs);
        const check = () => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

async function kill9(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise((r) => child.proc.once('exit', r));
  child.proc.kill('SIGKILL');
  await exited;
}

describe('outbox across SIGKILL (real child process, real SQLCipher file)', () => {
  let dir: string;
  let sim: GraphSimulator;
  const key = randomBytes(32);
  const children: Child[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clinic-inbox-outbox-crash-'));
    sim = createGraphSimulator({ accessToken: 'EAAcrash-test-token-000', phoneNumberId: '110000000000001', wabaId: '100000000000001', enforceWindow: false });
    await sim.listen();
  });

  afterEach(async () => {
    for (const c of children.splice(0)) await kill9(c);
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function child(mode: string): Child {
    const c = startChild(mode, join(dir, 'core.db'), sim.url, key);
    children.push(c);
    return c;
  }

  it('a message enqueued but not yet sent is sent exactly once after the restart', async () => {
    const first = child('enqueue-only');
    const messageId = (await first.waitFor(/^ENQUEUED \d+$/)).split(' ')[1];
    await first.waitFor(/^IDLE$/);
    await kill9(first);
    expect(sim.hits.messages).toBe(0);

    const second = child('resume');
    const status = await second.waitFor(/^STATUS \d+ sent$/);
    await second.waitFor(/^PASSED$/);
    expect(sim.sends).toHaveLength(1);
    expect(status).toBe(`STATUS ${messageId} sent`);
  });

  it('killed while Meta holds the answer: not sent again on restart, settled by the status webhook', async () => {
    sim.holdResponses(true);
    const first = child('enqueue');
    const messageId = (await first.waitFor(/^ENQUEUED \d+$/)).split(' ')[1];
    await sim.waitForSends(1);
    await kill9(first); // Meta has the message; the appliance never heard back.
    sim.holdResponses(false);

    const second = child('resume');
    await second.waitFor(/^PASSED$/);
    expect(sim.sends).toHaveLength(1);

    // The `sent` status webhook arrives through the relay and ingest stores it (unapplied: no
    // message has this wamid yet). The running worker adopts it from the callback data.
    const { db } = openDatabase({ path: join(dir, 'core.db'), key });
    try {
      expect(outboxCounts(db).unconfirmed).toBe(1);
      const sent = sim.sends[0]!;
      storeUnappliedStatus(db, { id: sent.wamid, status: 'sent', timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: sent.waId, biz_opaque_callback_data: sent.callbackData! }, Date.now());
      await second.waitFor(new RegExp(`^STATUS ${messageId} sent$`));
      const row = db.prepare('SELECT wamid, status FROM messages WHERE id = ?').get(Number(messageId));
      expect(row).toEqual({ wamid: sent.wamid, status: 'sent' });
      expect(outboxCounts(db)).toMatchObject({ sent: 1, unconfirmed: 0, queued: 0 });
    } finally {
      db.close();
    }
    expect(sim.sends).toHaveLength(1);
  });
});
