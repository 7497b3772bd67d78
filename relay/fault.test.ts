import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from './store';
import { RelayProcess } from './testing/relayProcess';
import { metaJson, textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

const PHONE = '550000001';
const CANARY_TEXT = 'CANARY-Zahnschmerzen-7f3a9c';
const CANARY_NAME = 'Zebulon Kanarienvogel';
const CANARY_WA_ID = '4915199990000';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Every needle, as UTF-8 and as JSON-escaped text, searched in every file of the folder. */
function findPlaintext(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  for (const file of filesUnder(dir)) {
    const bytes = readFileSync(file);
    for (const n of needles) {
      for (const form of [n, JSON.stringify(n).slice(1, -1), metaJson(n).slice(1, -1)]) {
        if (bytes.includes(Buffer.from(form, 'utf8')) || bytes.includes(Buffer.from(form, 'utf16le'))) {
          hits.push(`${n} in ${file}`);
          break;
        }
      }
    }
  }
  return hits;
}

const webhook = (i: number) =>
  metaJson(textMessageWebhook({ phoneNumberId: PHONE, wamid: `wamid.burst-${i}`, text: `${CANARY_TEXT} Nachricht ${i} – ä`, from: CANARY_WA_ID, name: CANARY_NAME }));

describe.each(['SIGKILL', 'SIGTERM'] as const)('%s in the middle of a burst of signed webhooks', (signal) => {
  it('delivers every webhook that got a 200, none twice, and keeps no plaintext on disk', async () => {
    const relay = await RelayProcess.start({ keepDataDir: true });
    try {
      await relay.createTenant({ tenantId: 'clinic-fault', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-fault'));

      const total = 400;
      const status = new Map<number, number | 'error'>();
      let next = 0;
      let killed: Promise<unknown> | null = null;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          try {
            status.set(i, (await relay.postWebhook(webhook(i))).status);
          } catch {
            status.set(i, 'error');
          }
          const ok = [...status.values()].filter((s) => s === 200).length;
          if (ok >= 120 && !killed) killed = relay.kill(signal);
        }
      };
      await Promise.all(Array.from({ length: 12 }, worker));
      await killed;
      const accepted = [...status].filter(([, s]) => s === 200).map(([i]) => i);
      const notAccepted = [...status].filter(([, s]) => s !== 200).map(([i]) => i);
      expect(accepted.length).toBeGreaterThanOrEqual(120);
      expect(notAccepted.length).toBeGreaterThan(0);

      await relay.restart();
      // Meta retries what it did not see acknowledged. Some of those were committed before the
      // answer was lost: the relay must recognise them rather than queue them twice.
      for (const i of notAccepted) expect((await relay.postWebhook(webhook(i))).status).toBe(200);

      await appliance.connect(relay.wsUrl);
      await appliance.waitForDeliveries(total, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      const wamids = appliance.deliveries.map((d) => JSON.parse(d.body).entry[0].changes[0].value.messages[0].id as string);
      expect(appliance.openFailures).toBe(0);
      expect(new Set(wamids).size).toBe(wamids.length);
      for (const i of accepted) expect(wamids).toContain(`wamid.burst-${i}`);
      expect(wamids).toHaveLength(total);
      const seqs = appliance.deliveries.map((d) => d.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      await relay.waitForQueued(0, undefined, 10_000);

      const needles = [CANARY_TEXT, CANARY_NAME, CANARY_WA_ID];
      expect(findPlaintext(relay.dataDir, needles)).toEqual([]);
      appliance.close();
      await relay.stop();
      expect(findPlaintext(relay.dataDir, needles)).toEqual([]);
      // The search is able to see a leak: the decrypted webhook, written out, is found.
      const probe = mkdtempSync(join(tmpdir(), 'canary-probe-'));
      writeFileSync(join(probe, 'leak.bin'), appliance.deliveries[0]!.body);
      expect(findPlaintext(probe, needles)).toHaveLength(3);
      rmSync(probe, { recursive: true, force: true });
    } finally {
      await relay.stop();
      rmSync(relay.dataDir, { recursive: true, force: true });
    }
  });
});

describe('a commit that fails', () => {
  it('answers 503 so Meta retries, stores nothing half-done, and the retry is delivered once', async () => {
    const relay = await RelayProcess.start();
    const locker = openStore(join(relay.dataDir, 'relay.sqlite'));
    try {
      await relay.createTenant({ tenantId: 'clinic-busy', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-busy'));
      // Another writer holds the database past the relay's busy timeout: its commit must fail.
      locker.exec('BEGIN IMMEDIATE');
      const failed = await relay.postWebhook(webhook(7));
      locker.exec('ROLLBACK');
      expect(failed.status).toBe(503);
      expect(JSON.parse(failed.body)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
      expect(relay.queued('clinic-busy')).toBe(0);
      expect((await relay.postWebhook(webhook(7))).status).toBe(200);
      await appliance.connect(relay.wsUrl);
      await appliance.waitForDeliveries(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(appliance.deliveries).toHaveLength(1);
      expect(await relay.metric('relay_webhooks_rejected_total', { reason: 'commit_failed' })).toBe(1);
      appliance.close();
    } finally {
      locker.close();
      await relay.stop();
    }
  });
});

describe('expiry', () => {
  it('deletes envelopes nobody acknowledged after the TTL and counts them', async () => {
    const relay = await RelayProcess.start({ env: { RELAY_ENVELOPE_TTL_DAYS: String(1 / 86_400), RELAY_SWEEP_INTERVAL_MS: '100' } });
    try {
      await relay.createTenant({ tenantId: 'clinic-ttl', phoneNumberIds: [PHONE] });
      const appliance = TestAppliance.create();
      await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-ttl'));
      expect((await relay.postWebhook(webhook(1))).status).toBe(200);
      expect(relay.queued('clinic-ttl')).toBe(1);
      await relay.waitForQueued(0, 'clinic-ttl', 5_000);
      expect(await relay.metric('relay_envelopes_expired_total', { tenant: 'clinic-ttl' })).toBe(1);
    } finally {
      await relay.stop();
    }
  });
});
