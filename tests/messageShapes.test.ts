import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView } from '../shared/rpc';
import { RelayProcess } from '../relay/testing/relayProcess';
import type { CoreHandle } from '../electron/core/createCore';
import { ingestDelivery } from '../electron/core/link/delivery';
import { ingestTrace } from '../electron/core/ingest/trace';
import { listRevisions, getMessageByWamid } from '../electron/core/db/repo/messages';
import { searchMessages } from '../electron/core/db/repo/search';
import { createTestDb, type TestDb } from '../electron/core/testing/testDb';
import { ignoredFieldBody, messageShapes, unattributableBody, valueErrorBody } from '../electron/core/testing/messageShapes';
import { ADMIN, call, RECEPTION, startPairedCore, waitFor } from './helpers';

/** Everything a delivery can change, in a comparable form. */
function snapshot(t: TestDb): string {
  const tables = ['messages', 'message_revisions', 'media', 'dead_letters', 'webhook_errors', 'ingest_counts', 'contacts', 'conversations', 'reactions'];
  return JSON.stringify(tables.map((name) => t.db.prepare(`SELECT * FROM ${name} ORDER BY 1`).all()));
}

let seq = 0;
const deliver = (t: TestDb, body: Record<string, unknown>) =>
  ingestDelivery(t.db, { kind: 'relay', body: JSON.stringify(body) }, { relaySeq: ++seq, receivedAt: 1_770_000_000_000, now: 1_770_000_000_000 });

describe('every shape of issue 9 through ingestDelivery', () => {
  let t: TestDb;
  afterEach(() => t.cleanup());

  for (const shape of messageShapes()) {
    it(`${shape.name}: stored once; a second delivery of the same bodies changes nothing`, () => {
      t = createTestDb();
      for (const body of shape.bodies) expect(deliver(t, body).deadLettered).toBe(false);
      const once = snapshot(t);
      for (const body of shape.bodies) {
        const again = deliver(t, body);
        expect(again.newMessages).toEqual([]);
        expect(again.messageChanges).toEqual([]);
      }
      expect(snapshot(t)).toBe(once);
      // Nothing of a known shape was shelved; every message landed in a thread.
      expect(t.db.prepare('SELECT count(*) FROM dead_letters').pluck().get()).toBe(0);
      expect(t.db.prepare('SELECT count(*) FROM messages').pluck().get()).toBeGreaterThan(0);
    });
  }

  it('an edit replaces the text, keeps the earlier version, and search finds only the new one', () => {
    t = createTestDb();
    for (const body of messageShapes().find((s) => s.name === 'edit')!.bodies) deliver(t, body);
    const m = getMessageByWamid(t.db, 'wamid.SHAPE-edit-orig')!;
    expect(m).toMatchObject({ text: 'Termin am Mittwoch bitte' });
    expect(m.edited_at).not.toBeNull();
    expect(listRevisions(t.db, m.id)).toEqual([{ kind: 'edit', previousText: 'Termin am Dienstag bitte', changedAt: expect.any(Number) }]);
    expect(searchMessages(t.db, { query: 'Mittwoch' }).items).toHaveLength(1);
    expect(searchMessages(t.db, { query: 'Dienstag' }).items).toHaveLength(0);
    // The edit event is not a message of its own.
    expect(getMessageByWamid(t.db, 'wamid.SHAPE-edit-ev')).toBeNull();
  });

  it('a revoke removes the text and media from the message and from search', () => {
    t = createTestDb();
    for (const body of messageShapes().find((s) => s.name === 'revoke')!.bodies) deliver(t, body);
    const m = getMessageByWamid(t.db, 'wamid.SHAPE-rev-orig')!;
    expect(m.text).toBeNull();
    expect(m.revoked_at).not.toBeNull();
    expect(m.content_json).not.toContain('geheim123');
    expect(searchMessages(t.db, { query: 'geheim123' }).items).toEqual([]);
    expect(searchMessages(t.db, { query: 'Versichertennummer' }).items).toEqual([]);
  });

  it('an edit or revoke that overtakes its message is applied when the message arrives', () => {
    t = createTestDb();
    const [orig, edit] = messageShapes().find((s) => s.name === 'edit')!.bodies;
    expect(deliver(t, edit!).counts.pendingRevisions).toBe(1);
    deliver(t, orig!);
    expect(getMessageByWamid(t.db, 'wamid.SHAPE-edit-orig')!.text).toBe('Termin am Mittwoch bitte');
  });

  it('a revoke from another patient changes nothing', () => {
    t = createTestDb();
    const [orig, revoke] = messageShapes().find((s) => s.name === 'revoke')!.bodies;
    deliver(t, orig!);
    const forged = JSON.parse(JSON.stringify(revoke).replaceAll('15555550101', '15555550177')) as Record<string, unknown>;
    deliver(t, forged);
    expect(getMessageByWamid(t.db, 'wamid.SHAPE-rev-orig')!.text).toBe('Meine Versichertennummer ist geheim123');
  });

  it('unattributable messages and ignored fields are shelved once and counted; value errors are kept with title and details', () => {
    t = createTestDb();
    for (const body of [unattributableBody(), ignoredFieldBody(), valueErrorBody()]) deliver(t, body);
    for (const body of [unattributableBody(), ignoredFieldBody(), valueErrorBody()]) deliver(t, body);
    const trace = ingestTrace(t.db);
    expect(trace.unattributable.count).toBe(1);
    expect(trace.ignoredFields).toEqual([{ field: 'account_update', count: 1, lastAt: expect.any(Number) }]);
    expect(trace.recentErrors).toMatchObject([{ code: 130429, title: 'Rate limit hit', details: 'Cloud API message throughput has been reached.' }]);
    expect(t.db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(0);
  });
});

describe('every shape through a real relay and core', () => {
  let relay: RelayProcess;
  let core: CoreHandle;
  const shapes = messageShapes(1_760_300_000);

  beforeAll(async () => {
    relay = await RelayProcess.start();
    await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: ['110000000000001'] });
    core = await startPairedCore(relay, 'clinic-a');
    for (const pass of [1, 2]) {
      for (const shape of shapes) for (const body of shape.bodies) expect((await relay.postWebhook(JSON.stringify(body))).status, `${shape.name} pass ${pass}`).toBe(200);
      for (const body of [unattributableBody(), ignoredFieldBody(), valueErrorBody()]) expect((await relay.postWebhook(JSON.stringify(body))).status).toBe(200);
      await waitFor('relay queue drained', () => relay.queued('clinic-a') === 0, 30_000);
    }
  }, 120_000);
  afterAll(async () => {
    await core?.close();
    await relay?.stop();
  });

  async function thread(): Promise<MessageView[]> {
    const inbox = await call(core, RECEPTION, 'inbox.listConversations', {});
    expect(inbox.items).toHaveLength(1);
    const page = await call(core, RECEPTION, 'messages.list', { conversationId: inbox.items[0]!.id, limit: 200 });
    return page.items;
  }
  const byWamid = (items: MessageView[], w: string) => items.find((m) => m.wamid === w)!;

  it('stores each message once, however often it was posted, and shows each shape as described', async () => {
    const items = await thread();
    const wamids = items.map((m) => m.wamid);
    expect(new Set(wamids).size).toBe(wamids.length);
    // One message per shape body, except the edit and revoke events, which change their original.
    expect(items).toHaveLength(shapes.reduce((n, s) => n + s.bodies.length, 0) - 2 - 1);

    expect(byWamid(items, 'wamid.SHAPE-loc-bare').detail).toMatchObject({ kind: 'location', latitude: 52.370216, longitude: 4.895168, name: null, address: null, mapsUrl: expect.stringMatching(/^https:\/\/www\.openstreetmap\.org\//) });
    expect(byWamid(items, 'wamid.SHAPE-loc-named').detail).toMatchObject({ kind: 'location', name: 'Praxis am Markt', address: 'Marienplatz 1, München' });
    expect(byWamid(items, 'wamid.SHAPE-btn').detail).toEqual({ kind: 'reply', replyKind: 'button', title: 'Bestätigen', description: null });
    expect(byWamid(items, 'wamid.SHAPE-list').detail).toEqual({ kind: 'reply', replyKind: 'list', title: 'Dienstag 10:00', description: 'Dr. Weber' });
    expect(byWamid(items, 'wamid.SHAPE-nfm').detail).toEqual({
      kind: 'form',
      answers: [
        { label: 'Preferred date', value: '2026-03-02' },
        { label: 'Reason', value: 'Check-up' },
        { label: 'Insured', value: 'true' },
      ],
    });
    expect(byWamid(items, 'wamid.SHAPE-callperm').detail).toEqual({ kind: 'callPermission', accepted: true, permanent: false });
    expect(byWamid(items, 'wamid.SHAPE-tplbtn').detail).toEqual({ kind: 'reply', replyKind: 'template', title: 'Ja, ich komme', description: null });
    expect(byWamid(items, 'wamid.SHAPE-order')).toMatchObject({
      text: 'Bitte zur Abholung',
      detail: { kind: 'order', catalogId: 'catalog-4711', items: [{ retailerId: 'vit-d3', quantity: 2, price: 12.5, currency: 'EUR' }, { retailerId: 'spray-10', quantity: 1, price: 4.99, currency: 'EUR' }] },
    });
    expect(byWamid(items, 'wamid.SHAPE-ad').referral).toEqual({ sourceType: 'ad', headline: 'Grippeimpfung jetzt', body: 'Termine ab Montag', sourceUrl: 'https://fb.me/abc' });
    expect(byWamid(items, 'wamid.SHAPE-vcard').detail).toEqual({ kind: 'contacts', cards: [{ name: 'Anna Beispiel', phones: ['+49 30 1234567'], emails: ['anna@example.invalid'], organisation: 'Apotheke Nord' }] });
    expect(byWamid(items, 'wamid.SHAPE-stk-anim').detail).toEqual({ kind: 'sticker', animated: true });
    expect(byWamid(items, 'wamid.SHAPE-stk').detail).toEqual({ kind: 'sticker', animated: false });
    expect(byWamid(items, 'wamid.SHAPE-voice').detail).toEqual({ kind: 'audio', voice: true });
    expect(byWamid(items, 'wamid.SHAPE-audio').detail).toEqual({ kind: 'audio', voice: false });
    expect(byWamid(items, 'wamid.SHAPE-video')).toMatchObject({ text: 'So sieht das Knie aus', detail: { kind: 'video' } });
    expect(byWamid(items, 'wamid.SHAPE-doc').detail).toEqual({ kind: 'document', filename: 'Befund-2026.pdf' });
    expect(byWamid(items, 'wamid.SHAPE-unsup').detail).toEqual({ kind: 'unsupported', metaType: 'poll_creation' });
    expect(byWamid(items, 'wamid.SHAPE-future').detail).toEqual({ kind: 'unsupported', metaType: 'hologram' });
    expect(byWamid(items, 'wamid.SHAPE-edit-orig')).toMatchObject({ text: 'Termin am Mittwoch bitte', edited: true, deleted: false });
    expect(byWamid(items, 'wamid.SHAPE-rev-orig')).toMatchObject({ text: null, media: null, deleted: true, detail: null });
    expect(byWamid(items, 'wamid.SHAPE-echo')).toMatchObject({ direction: 'out', fromPhone: true, text: 'Gern, bis Mittwoch!', status: 'sent' });
    expect(byWamid(items, 'wacid.SHAPE-missed').detail).toEqual({ kind: 'call', direction: 'in', outcome: 'missed', durationSeconds: null });
    expect(byWamid(items, 'wacid.SHAPE-answered').detail).toEqual({ kind: 'call', direction: 'in', outcome: 'answered', durationSeconds: 185 });
  });

  it('a deleted message\'s text is not found by search', async () => {
    const hits = await call(core, RECEPTION, 'search.messages', { query: 'geheim123' });
    expect(hits.items).toEqual([]);
  });

  it('shows the admin what was shelved, ignored or unattributed and Meta\'s errors with title and details', async () => {
    const status = await call(core, ADMIN, 'whatsapp.status', {});
    expect(status.ingest!.unattributable.count).toBe(1);
    expect(status.ingest!.ignoredFields).toMatchObject([{ field: 'account_update', count: 1 }]);
    expect(status.ingest!.unsupported).toMatchObject([
      { reason: 'meta_unsupported', count: 1 },
      { reason: 'unknown_type', count: 1 },
    ]);
    expect(status.ingest!.recentErrors).toMatchObject([{ code: 130429, title: 'Rate limit hit', details: 'Cloud API message throughput has been reached.' }]);
  });
});
