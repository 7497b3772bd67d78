import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayProcess } from '../relay/testing/relayProcess';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import { openCoreStore } from '../electron/core/db/coreStore';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { quietLogger, relayWithPairedFolder, waitFor } from './helpers';

const ROOT = resolve(import.meta.dirname, '..');
const PHONE = '110000000000001';
const KILLS = 20;
const WEBHOOKS = 600;

/** The headless core (`electron/core/main.ts`) as a real child process on a paired data folder. */
function startCoreProcess(dataDir: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'electron/core/main.ts'), '--data-dir', dataDir, '--log-level', 'info'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGKILL');
  });
}

describe('the core killed again and again while it ingests', () => {
  let relay: RelayProcess;
  let fixture: Awaited<ReturnType<typeof relayWithPairedFolder>>;
  let data: { dir: string };

  beforeAll(async () => {
    // Pair once in this process, then hand the data folder to child processes.
    fixture = await relayWithPairedFolder('clinic-a', [PHONE]);
    relay = fixture.relay;
    data = { dir: fixture.dataDir };
  });
  afterAll(() => fixture?.stop());

  it(`loses nothing the relay accepted and stores nothing twice across ${KILLS} SIGKILLs`, async () => {
    const accepted = new Set<string>();
    let child = startCoreProcess(data.dir);
    let stderr = '';
    let connectedLives = 0;
    const queuedAtKill: number[] = [];
    let linkUp: Promise<void> = Promise.resolve();
    const collect = (c: ChildProcess): void => {
      c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      linkUp = new Promise((up) => {
        const onData = (d: Buffer): void => {
          if (!d.toString().includes('relay link up')) return;
          connectedLives += 1;
          c.stdout?.off('data', onData);
          up();
        };
        c.stdout?.on('data', onData);
        c.once('exit', () => up());
      });
    };
    collect(child);

    // Meta posts a steady stream while the core keeps dying and coming back.
    const posting = (async () => {
      for (let i = 0; i < WEBHOOKS; i++) {
        const wamid = `wamid.CRASH-${i}`;
        const body = batchWebhook([
          textMessageChange({ phoneNumberId: PHONE, wamid, text: `Nachricht ${i}`, from: `1555555${String(1000 + (i % 50)).padStart(4, '0')}`, timestamp: 1760000000 + i }),
        ]);
        const res = await relay.postWebhook(body);
        if (res.status === 200) accepted.add(wamid);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    for (let k = 0; k < KILLS; k++) {
      // Let this life get through start-up (keychain, migrations, connect) and into ingest, then kill it.
      // Every third life dies the moment its link is up, while the backlog that piled up during its
      // start-up is still being delivered; the others die at a random point of their work.
      await Promise.race([linkUp, new Promise((r) => setTimeout(r, 10_000))]);
      if (k % 3 !== 0) await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 400)));
      queuedAtKill.push(relay.queued('clinic-a'));
      await killed(child);
      child = startCoreProcess(data.dir);
      collect(child);
    }
    await posting;
    await waitFor('the relay queue drained by the last core', () => relay.queued('clinic-a') === 0, 60_000);
    await killed(child);
    expect(stderr).not.toMatch(/DATABASE_LOCKED|KEYCHAIN_UNAVAILABLE/);
    // The kills really fell during work: most lives got as far as the relay link, and the queue
    // was not empty when some of them died.
    expect(connectedLives).toBeGreaterThanOrEqual(KILLS / 2);
    expect(queuedAtKill.some((q) => q > 0)).toBe(true);

    const store = await openCoreStore({ dataDir: data.dir, secrets: await createKeytarSecretStore(), logger: quietLogger() });
    try {
      const { db } = store;
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const rows = db.prepare(`SELECT wamid FROM messages WHERE wamid LIKE 'wamid.CRASH-%'`).all() as { wamid: string }[];
      const stored = new Set(rows.map((r) => r.wamid));
      expect(rows.length).toBe(stored.size); // no duplicates
      expect(accepted.size).toBe(WEBHOOKS);
      const missing = [...accepted].filter((w) => !stored.has(w));
      expect(missing).toEqual([]);
    } finally {
      store.close();
    }
  }, 180_000);
});
