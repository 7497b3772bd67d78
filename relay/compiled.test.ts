/**
 * The compiled build (relay/build.mjs → dist/relay, what relay/deploy runs) serves the same path:
 * enrol, connect (envelope v2), a signed webhook delivered and acknowledged.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RelayProcess } from './testing/relayProcess';
import { textMessageWebhook } from './testing/signWebhook';
import { TestAppliance } from './testing/testAppliance';

let relay: RelayProcess;
beforeAll(async () => {
  relay = await RelayProcess.start({ compiled: true });
}, 60_000);
afterAll(async () => {
  await relay?.stop();
});

it('runs from dist/relay without the TypeScript loader: a webhook is sealed, delivered and acknowledged', async () => {
  await relay.createTenant({ tenantId: 'clinic-dist', phoneNumberIds: ['930000000000001'] });
  const a = TestAppliance.create();
  await a.enrol(relay.url, await relay.issueEnrolmentCode('clinic-dist'));
  await a.connect(relay.wsUrl, { envelopeV2: true });
  expect((await relay.postWebhook(textMessageWebhook({ phoneNumberId: '930000000000001', wamid: 'wamid.dist-1', text: 'kompiliert' }))).status).toBe(200);
  await a.waitForDeliveries(1);
  expect(a.versions).toEqual([2]);
  await relay.waitForQueued(0, 'clinic-dist');
  expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
  a.close();
});
