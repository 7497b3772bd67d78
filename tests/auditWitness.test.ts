import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayProcess } from '../relay/testing/relayProcess';
import { textMessageWebhook } from '../relay/testing/signWebhook';
import { createCore } from '../electron/core/createCore';
import { openDatabase } from '../electron/core/db/open';
import { readDatabaseKey } from '../electron/core/keys/coreKeys';
import { createKeytarSecretStore } from '../electron/core/keys/secretStore';
import { AUDITOR, call, dispatchAs, quietLogger, RECEPTION, startPairedCore, tempDataDir, waitFor } from './helpers';

const PHONE = '110000000000001';

describe('the audit log and its outside witness at the relay', () => {
  let relay: RelayProcess;
  const data = tempDataDir();

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: [PHONE] });
  });
  afterAll(async () => {
    await relay?.stop();
    data.remove();
  });

  it('records who read which patient, and shows a deleted tail that the chain alone cannot', async () => {
    const core = await startPairedCore(relay, 'clinic-a', { dataDir: data.dir });
    await relay.postWebhook(textMessageWebhook({ phoneNumberId: PHONE, wamid: 'wamid.AUDIT-1', text: 'Befund?', name: 'Karl Roth' }));
    const conversationId = await waitFor('conversation', async () => (await call(core, RECEPTION, 'inbox.listConversations', {})).items[0]?.id);
    for (let i = 0; i < 3; i++) await call(core, RECEPTION, 'messages.list', { conversationId });

    expect(await dispatchAs(core, RECEPTION, 'audit.verify', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const first = await call(core, AUDITOR, 'audit.verify', {});
    expect(first.chain).toMatchObject({ ok: true });
    expect(first.witness).toMatchObject({ ok: true });
    const witnessed = (first.witness as { witnessedSeq: number }).witnessedSeq;
    expect(witnessed).toBeGreaterThanOrEqual(4);
    const installationId = core.installationId;
    await core.close();

    // Someone with the key removes the last entries (the three reads of Karl Roth's thread).
    const key = await readDatabaseKey(await createKeytarSecretStore(), installationId);
    const { db } = openDatabase({ path: `${data.dir}/clinic-inbox.db`, key: key! });
    const reads = db
      .prepare(`SELECT count(*) AS n FROM audit_log WHERE method = 'messages.list' AND display_name = 'Anna' AND session_id IS NOT NULL AND contact_ids <> '[]'`)
      .get() as { n: number };
    expect(reads.n).toBe(3);
    // Seeing a patient in the inbox list is a read too: the page's patients are named.
    const listed = db
      .prepare(`SELECT contact_ids FROM audit_log WHERE method = 'inbox.listConversations' AND display_name = 'Anna' AND session_id IS NOT NULL AND action = 'read' AND contact_ids <> '[]'`)
      .all() as { contact_ids: string }[];
    expect(listed.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(listed[0]!.contact_ids)).toHaveLength(1);
    db.exec('DROP TRIGGER audit_log_append_only_delete');
    db.prepare('DELETE FROM audit_log WHERE seq > ?').run(witnessed - 3);
    db.close();

    const again = await createCore({ dataDir: data.dir, logger: quietLogger(), graph: { baseUrl: 'http://127.0.0.1:9' } });
    try {
      await waitFor('link up', () => again.relayStatus().state === 'connected');
      const verdict = await call(again, AUDITOR, 'audit.verify', {});
      expect(verdict.chain).toMatchObject({ ok: true }); // a clean cut leaves a valid chain…
      expect(verdict.witness).toMatchObject({ ok: false }); // …but the relay saw further
    } finally {
      await again.close();
    }
  });
});
