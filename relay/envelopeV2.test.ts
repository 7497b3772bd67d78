/**
 * Which envelope version the relay seals: v2 to an appliance that announced it on the upgrade,
 * v1 to one that did not (every appliance before v2), through the real relay process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from './testing/relayProcess';
import { textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

let relay: RelayProcess;
beforeAll(async () => {
  relay = await RelayProcess.start();
});
afterAll(async () => {
  await relay?.stop();
});

async function paired(tenantId: string, phone: string, envelopeV2: boolean) {
  await relay.createTenant({ tenantId, phoneNumberIds: [phone] });
  const a = TestAppliance.create();
  await a.enrol(relay.url, await relay.issueEnrolmentCode(tenantId));
  await a.connect(relay.wsUrl, { envelopeV2 });
  return a;
}

describe('envelope versions', () => {
  it('seals v2 for an appliance that announced it: one epoch context for a burst, every envelope opened', async () => {
    const a = await paired('clinic-v2', '910000000000021', true);
    for (let i = 0; i < 20; i += 1) expect((await relay.postWebhook(textMessageWebhook({ phoneNumberId: '910000000000021', wamid: `wamid.v2-${i}`, text: `t${i}` }))).status).toBe(200);
    await a.waitForDeliveries(20);
    expect(a.versions).toEqual(Array(20).fill(2));
    expect(a.epochSecrets.size).toBe(1);
    expect(a.openFailures).toBe(0);
    a.close();
  });

  it('seals v1 for an appliance that did not announce v2, and switches once it does', async () => {
    const a = await paired('clinic-v1', '910000000000022', false);
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: '910000000000022', wamid: 'wamid.v1-1', text: 'eins' }));
    await a.waitForDeliveries(1);
    expect(a.versions).toEqual([1]);
    a.close();
    await a.closed;
    await a.connect(relay.wsUrl, { envelopeV2: true });
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: '910000000000022', wamid: 'wamid.v1-2', text: 'zwei' }));
    await a.waitForDeliveries(2);
    expect(a.versions).toEqual([1, 2]);
    expect(a.openFailures).toBe(0);
    a.close();
  });
});
