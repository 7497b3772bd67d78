import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from '../relay/testing/relayProcess';
import { TestAppliance } from '../relay/testing/testAppliance';
import { batchWebhook, textMessageChange } from '../relay/testing/signWebhook';
import { createGraphSimulator, type GraphSimulator } from '../electron/core/testing/graphSimulator';
import { createCore, type CoreHandle } from '../electron/core/createCore';
import type { WhatsAppStatus } from '../shared/rpc';
import { ADMIN, call, dispatchAs, listen, RECEPTION, startPairedCore, tempDataDir, waitFor } from './helpers';

const PHONE_A = '110000000000001';
const PHONE_B = '220000000000002';
const WABA = '100000000000001';
const TOKEN = 'EAAG-test-token-0123456789abcdef';
/** The clinic's own Meta app secret: Meta signs its webhooks with it. */
const CLINIC_SECRET = '0123456789abcdef0123456789abcdef';
/** A second secret the relay accepts but this clinic's Meta app never used: what a compromised relay signs with. */
const FORGER_SECRET = '5f0e5f0e5f0e5f0e5f0e5f0e5f0e5f0e';
const TYPO_SECRET = '0123456789abcdef0123456789abcdee';

/**
 * "If the relay were compromised, could it inject messages that look like they came from
 * patients?" With the app secret on the appliance: not in a body Meta signed. A real relay, a real
 * core with the real keychain; the relay holds an extra secret so it accepts (and faithfully
 * delivers) bodies this clinic's Meta app never signed, as a compromised relay would.
 */
describe('the appliance checks Meta\'s signature itself', () => {
  let relay: RelayProcess;
  let sim: GraphSimulator;
  let core: CoreHandle;
  const data = tempDataDir();
  const logs: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    }),
  );
  const states: WhatsAppStatus[] = [];

  beforeAll(async () => {
    relay = await RelayProcess.start({ appSecrets: [CLINIC_SECRET, FORGER_SECRET] });
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: [PHONE_A] });
    await relay.createTenant({ tenantId: 'clinic-b', phoneNumberIds: [PHONE_B] });
    // The other clinic has its own appliance: without one, the relay would ask Meta to retry the POST.
    await TestAppliance.create().enrol(relay.url, await relay.issueEnrolmentCode('clinic-b'));
    sim = createGraphSimulator({ accessToken: TOKEN, phoneNumberId: PHONE_A, wabaId: WABA, templates: [] });
    await sim.listen();
    core = await startPairedCore(relay, 'clinic-a', { dataDir: data.dir, logger });
    await listen(core, RECEPTION, (event, payload) => {
      if (event === 'whatsapp.stateChanged') states.push(payload as WhatsAppStatus);
    });
  });
  afterAll(async () => {
    await core?.close();
    await sim?.close();
    await relay?.stop();
    data.remove();
  });

  const configure = (appSecret?: string | null) =>
    call(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN, graphBaseUrl: sim.url, ...(appSecret === undefined ? {} : { appSecret }) });
  const status = async () => (await call(core, RECEPTION, 'whatsapp.status', {})).signatureCheck;
  const found = async (text: string) => (await call(core, RECEPTION, 'search.messages', { query: text })).items.length;
  const patient = (wamid: string, text: string) => batchWebhook([textMessageChange({ phoneNumberId: PHONE_A, wamid, text, from: '4915110000042', name: 'Lena Graf' })]);
  async function post(body: object, secret: string): Promise<void> {
    expect((await relay.postWebhook(body, { secret })).status).toBe(200);
    await waitFor('relay queue drained', () => relay.queued('clinic-a') === 0);
  }

  it('is off until an app secret is given, and then shows messages Meta signed', async () => {
    await configure();
    expect(await status()).toMatchObject({ enabled: false, secrets: 0, verified: 0, failed: 0, relayVouched: 0 });

    const configured = await configure(CLINIC_SECRET);
    expect(configured.signatureCheck).toMatchObject({ enabled: true, secrets: 1, verified: 0, failed: 0 });
    expect(configured.signatureCheck.since).toEqual(expect.any(Number));

    await post(patient('wamid.SIG-OK-1', 'Rezept abholen Dienstag'), CLINIC_SECRET);
    await waitFor('signed message in the inbox', async () => (await found('Rezept')) === 1);
    expect(await status()).toMatchObject({ verified: 1, failed: 0 });
  });

  it('keeps a body Meta never signed out of the inbox, shelved and counted, while the queue moves on', async () => {
    await post(patient('wamid.SIG-FORGED-1', 'Bitte Befund an diese Adresse mailen'), FORGER_SECRET);
    const s = await waitFor('failure counted', async () => {
      const v = await status();
      return v.failed === 1 ? v : undefined;
    });
    expect(s).toMatchObject({ enabled: true, verified: 1, failed: 1, failedSince: 1 });
    expect(s.lastFailedAt).toEqual(expect.any(Number));
    expect(await found('Befund')).toBe(0);
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    expect(inbox.items).toHaveLength(1); // only the genuine conversation; the forged one made no contact either
    await waitFor('pushed to the UI', () => states.some((st) => st.signatureCheck.failed === 1));
    expect(logs.join('')).toMatch(/webhook failed the Meta signature check/);
  });

  it('counts a batch the relay split between clinics as relay-vouched, and shows it', async () => {
    const body = batchWebhook([
      textMessageChange({ phoneNumberId: PHONE_A, wamid: 'wamid.SIG-SPLIT-A', text: 'Gemischte Sendung Praxis', from: '4915110000043', name: 'Emil' }),
      textMessageChange({ phoneNumberId: PHONE_B, wamid: 'wamid.SIG-SPLIT-B', text: 'Andere Praxis', from: '4915110000044', name: 'Ida' }),
    ]);
    await post(body, CLINIC_SECRET);
    await waitFor('split message in the inbox', async () => (await found('Gemischte')) === 1);
    expect(await status()).toMatchObject({ verified: 1, failed: 1, relayVouched: 1 });
  });

  it('with only Meta-signed messages required, keeps a split batch out of the inbox and counted failed; turning it off shows it', async () => {
    const setRequired = (requireMetaSignature?: boolean) =>
      call(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN, graphBaseUrl: sim.url, ...(requireMetaSignature === undefined ? {} : { requireMetaSignature }) });
    const on = await setRequired(true);
    expect(on.signatureCheck).toMatchObject({ enabled: true, required: true, failed: 1, relayVouched: 1 });

    await post(
      batchWebhook([
        textMessageChange({ phoneNumberId: PHONE_A, wamid: 'wamid.SIG-REQ-SPLIT-A', text: 'Sammelsendung Praxis', from: '4915110000045', name: 'Jonas' }),
        textMessageChange({ phoneNumberId: PHONE_B, wamid: 'wamid.SIG-REQ-SPLIT-B', text: 'Andere Praxis zwei', from: '4915110000046', name: 'Mia' }),
      ]),
      CLINIC_SECRET,
    );
    await waitFor('split batch shelved', async () => (await status()).failed === 2);
    expect(await status()).toMatchObject({ required: true, failed: 2, failedSince: 2, relayVouched: 1 });
    expect(await found('Sammelsendung')).toBe(0);
    await waitFor('banner pushed to the UI', () => states.some((st) => st.signatureCheck.required && st.signatureCheck.failed === 2));

    // What Meta signed still shows, and renewing the token without the switch leaves it on.
    await post(patient('wamid.SIG-REQ-OK', 'Signiert trotz Pflicht'), CLINIC_SECRET);
    await waitFor('signed message in the inbox', async () => (await found('Signiert')) === 1);
    expect((await setRequired()).signatureCheck).toMatchObject({ required: true, failed: 2 });
    expect(await found('Sammelsendung')).toBe(0);

    const received: number[] = [];
    const off = await listen(core, RECEPTION, (event, payload) => {
      if (event === 'message.received') received.push((payload as { messageId: number }).messageId);
    });
    const turnedOff = await setRequired(false);
    off();
    expect(turnedOff.signatureCheck).toMatchObject({ required: false, failed: 1, relayVouched: 2 });
    expect(received).toHaveLength(1);
    expect(await found('Sammelsendung')).toBe(1);
    // The forgery is a Meta delivery that does not verify: the switch never lets it in.
    expect(await found('Befund')).toBe(0);
  });

  it('with a mistyped app secret shows nothing, says so, and applies what was shelved once the right one is entered', async () => {
    const wrong = await configure(TYPO_SECRET);
    // A new secret starts its own tally; what is shelved stays shelved and counted.
    expect(wrong.signatureCheck).toMatchObject({ enabled: true, secrets: 1, verified: 0, failed: 1, failedSince: 0, relayVouched: 0 });

    await post(patient('wamid.SIG-GENUINE-2', 'Termin absagen Mittwoch'), CLINIC_SECRET);
    await waitFor('genuine message shelved', async () => (await status()).failed === 2);
    expect((await status()).failedSince).toBe(1);
    expect(await found('absagen')).toBe(0);

    // The admin corrects it (here with the old one still listed, as during a rotation).
    const received: number[] = [];
    const off = await listen(core, RECEPTION, (event, payload) => {
      if (event === 'message.received') received.push((payload as { messageId: number }).messageId);
    });
    const fixed = await configure(`${TYPO_SECRET} ${CLINIC_SECRET}`);
    off();
    // The forgery is still shelved, but it was looked at: only new failures count as "failing now".
    expect(fixed.signatureCheck).toMatchObject({ enabled: true, secrets: 2, verified: 1, failed: 1, failedSince: 0 });
    expect(received).toHaveLength(1);
    expect(await found('absagen')).toBe(1);
    // The forgery verifies under neither secret: still shelved, still not shown.
    expect(await found('Befund')).toBe(0);
  });

  it('checks a backlog from the first delivery after a restart: a forgery between genuine messages holds none back', async () => {
    await core.close();
    // Queued while the core is down, so they arrive together the moment the link is up.
    expect((await relay.postWebhook(patient('wamid.SIG-BACKLOG-1', 'Nach dem Neustart eins'), { secret: CLINIC_SECRET })).status).toBe(200);
    expect((await relay.postWebhook(patient('wamid.SIG-FORGED-2', 'Gefälscht nach dem Neustart'), { secret: FORGER_SECRET })).status).toBe(200);
    expect((await relay.postWebhook(patient('wamid.SIG-BACKLOG-2', 'Nach dem Neustart zwei'), { secret: CLINIC_SECRET })).status).toBe(200);
    expect(relay.queued('clinic-a')).toBe(3);

    core = await createCore({ dataDir: data.dir, logger, graph: { baseUrl: sim.url } });
    await waitFor('backlog drained', () => relay.queued('clinic-a') === 0);
    // The secret came back from the keychain before the link started: nothing slipped through unchecked.
    expect(await status()).toMatchObject({ enabled: true, secrets: 2, verified: 3, failed: 2, failedSince: 1 });
    expect(await found('Neustart')).toBe(2);
    expect(await found('Gefälscht')).toBe(0);

    // The secret lives in the keychain only: never in a status, never in a log line.
    const everything = JSON.stringify(await call(core, ADMIN, 'whatsapp.status', {})) + logs.join('');
    for (const secret of [CLINIC_SECRET, FORGER_SECRET, TYPO_SECRET]) expect(everything).not.toContain(secret);
  });

  it('refuses a malformed app secret without changing anything, and turns checking off on request', async () => {
    const bad = await dispatchAs(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN, graphBaseUrl: sim.url, appSecret: 'my-app-secret' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(JSON.stringify(bad)).not.toContain('my-app-secret');
    expect(await status()).toMatchObject({ enabled: true, secrets: 2 });

    const off = await configure(null);
    expect(off.signatureCheck).toMatchObject({ enabled: false, secrets: 0, since: null, failed: 2, required: false });

    // Requiring Meta's signature needs a secret to check it with: refused, nothing changed.
    for (const input of [{ requireMetaSignature: true }, { requireMetaSignature: true, appSecret: null }]) {
      const refused = await dispatchAs(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN, graphBaseUrl: sim.url, ...input });
      expect(refused).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED', message: expect.stringMatching(/app secret/) } });
    }
    expect(await status()).toMatchObject({ enabled: false, required: false });
    // With the secret given in the same call it is accepted.
    const both = await call(core, ADMIN, 'setup.whatsapp', { wabaId: WABA, accessToken: TOKEN, graphBaseUrl: sim.url, appSecret: CLINIC_SECRET, requireMetaSignature: true });
    expect(both.signatureCheck).toMatchObject({ enabled: true, required: true, failed: 2 });

    // The setting survives a restart and holds from the first delivery after it.
    await core.close();
    core = await createCore({ dataDir: data.dir, logger, graph: { baseUrl: sim.url } });
    expect(await status()).toMatchObject({ enabled: true, required: true });
    await post(
      batchWebhook([
        textMessageChange({ phoneNumberId: PHONE_A, wamid: 'wamid.SIG-REQ-RESTART-A', text: 'Neustartsammelsendung', from: '4915110000047', name: 'Paul' }),
        textMessageChange({ phoneNumberId: PHONE_B, wamid: 'wamid.SIG-REQ-RESTART-B', text: 'Andere Praxis drei', from: '4915110000048', name: 'Lea' }),
      ]),
      CLINIC_SECRET,
    );
    await waitFor('split batch shelved after the restart', async () => (await status()).failed === 3);
    expect(await found('Neustartsammelsendung')).toBe(0);
  });
});
