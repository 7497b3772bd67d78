import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import { getContact } from '../db/repo/contacts';
import { listConversations } from '../db/repo/conversations';
import { listThread } from '../db/repo/messages';
import { createTestDb, type TestDb } from '../testing/testDb';
import { PHONE_NUMBER_ID, WABA_ID, wamid, webhookBody } from '../testing/whatsappPayloads';
import { applyWebhook } from './apply';

const OLD_BSUID = 'DE.1502576394655843';
const NEW_BSUID = 'DE.2609871234567001';
const OLD_NUMBER = '4915110000101';
const NEW_NUMBER = '4915110000199';

let t: TestDb;
let clock = 1_770_000_000;
beforeEach(() => {
  t = createTestDb();
});
afterEach(() => t.cleanup());

const apply = (value: Record<string, unknown>) => applyWebhook(t.db, WebhookSchema.parse(webhookBody(value)), { receivedAt: Date.now() });
const count = (sql: string) => t.db.prepare(sql).pluck().get() as number;

function text(from: { waId?: string; userId?: string }, body: string) {
  const m = {
    ...(from.waId ? { from: from.waId } : {}),
    ...(from.userId ? { from_user_id: from.userId } : {}),
    id: wamid('in'),
    timestamp: String(++clock),
    type: 'text',
    text: { body },
  };
  const who = { profile: { name: 'Noor Bakker' }, ...(from.waId ? { wa_id: from.waId } : {}), ...(from.userId ? { user_id: from.userId } : {}) };
  return { contacts: [who], messages: [m] };
}

/** Meta's identity notice: a `system` message without a contacts array (webhook reference, changelog Aug 2026). */
function systemNotice(from: { waId?: string; userId?: string }, system: Record<string, unknown>) {
  return {
    messages: [
      {
        ...(from.waId ? { from: from.waId } : {}),
        ...(from.userId ? { from_user_id: from.userId } : {}),
        id: wamid('sys'),
        timestamp: String(++clock),
        type: 'system',
        system: { body: 'User Noor Bakker changed', ...system },
      },
    ],
  };
}

function onlyContact() {
  const id = t.db.prepare('SELECT id FROM contacts').pluck().get() as number;
  return getContact(t.db, id)!;
}

describe('identity changes keep one thread', () => {
  it('a new BSUID (user_changed_user_id) moves the contact; the next message and replies use it', () => {
    apply(text({ userId: OLD_BSUID }, 'Hallo, ich hätte eine Frage.'));
    const notice = systemNotice({ userId: OLD_BSUID }, { type: 'user_changed_user_id', user_id: NEW_BSUID, previous_user_id: OLD_BSUID });
    const r = apply(notice);
    expect(r.counts.identityChanges).toBe(1);
    expect(r.contactIds).toHaveLength(1);
    apply(text({ userId: NEW_BSUID }, 'Noch da?'));

    expect(count('SELECT count(*) FROM contacts')).toBe(1);
    expect(onlyContact()).toMatchObject({ user_id: NEW_BSUID, wa_id: null });
    const inbox = listConversations(t.db);
    expect(inbox.items).toHaveLength(1);
    const thread = listThread(t.db, { conversationId: inbox.items[0]!.id });
    expect(thread.items.map((m) => m.type)).toEqual(['text', 'system', 'text']);

    // Redelivered (at-least-once): stored once, nothing applied twice.
    const again = apply(notice);
    expect(again.counts).toMatchObject({ duplicateMessages: 1, identityChanges: 0 });
    expect(onlyContact().user_id).toBe(NEW_BSUID);
  });

  it('finds the contact by previous_user_id even when the notice comes from the new BSUID', () => {
    apply(text({ userId: OLD_BSUID }, 'Guten Morgen'));
    apply(systemNotice({ userId: NEW_BSUID }, { type: 'user_changed_user_id', user_id: NEW_BSUID, previous_user_id: OLD_BSUID }));
    apply(text({ userId: NEW_BSUID }, 'Danke'));
    expect(count('SELECT count(*) FROM contacts')).toBe(1);
    expect(count('SELECT count(*) FROM conversations')).toBe(1);
    expect(onlyContact().user_id).toBe(NEW_BSUID);
  });

  it('files a notice that names the patient only by previous_user_id (no from, no from_user_id)', () => {
    apply(text({ userId: OLD_BSUID }, 'Hallo'));
    const r = apply(systemNotice({}, { type: 'user_changed_user_id', user_id: NEW_BSUID, previous_user_id: OLD_BSUID }));
    expect(r.counts).toMatchObject({ messages: 1, unattributable: 0, identityChanges: 1 });
    expect(count('SELECT count(*) FROM conversations')).toBe(1);
    expect(onlyContact().user_id).toBe(NEW_BSUID);
  });

  it('a number change (user_changed_number) takes the new number and the regenerated BSUID', () => {
    apply(text({ waId: OLD_NUMBER, userId: OLD_BSUID }, 'Termin am Freitag?'));
    const r = apply(
      systemNotice({ waId: OLD_NUMBER, userId: OLD_BSUID }, { type: 'user_changed_number', wa_id: NEW_NUMBER, user_id: NEW_BSUID, previous_user_id: OLD_BSUID }),
    );
    expect(r.counts.identityChanges).toBe(1);
    apply(text({ waId: NEW_NUMBER, userId: NEW_BSUID }, 'Neue Nummer, gleiche Patientin'));
    expect(count('SELECT count(*) FROM contacts')).toBe(1);
    expect(count('SELECT count(*) FROM conversations')).toBe(1);
    expect(onlyContact()).toMatchObject({ wa_id: NEW_NUMBER, user_id: NEW_BSUID });
  });

  it('an old notice redelivered after a later change does not undo it', () => {
    const THIRD = 'DE.3000000000000003';
    apply(text({ userId: OLD_BSUID }, 'Hallo'));
    const first = systemNotice({ userId: OLD_BSUID }, { type: 'user_changed_user_id', user_id: NEW_BSUID, previous_user_id: OLD_BSUID });
    apply(first);
    apply(systemNotice({ userId: NEW_BSUID }, { type: 'user_changed_user_id', user_id: THIRD, previous_user_id: NEW_BSUID }));
    apply(first);
    expect(count('SELECT count(*) FROM contacts')).toBe(1);
    expect(onlyContact().user_id).toBe(THIRD);
    expect(count('SELECT count(*) FROM conversations')).toBe(1);
  });

  it('never takes an id another contact holds: counted, both histories left apart', () => {
    apply(text({ userId: OLD_BSUID }, 'Erste Person'));
    apply(text({ userId: NEW_BSUID }, 'Schon unter der neuen Kennung'));
    const r = apply(systemNotice({ userId: OLD_BSUID }, { type: 'user_changed_user_id', user_id: NEW_BSUID, previous_user_id: OLD_BSUID }));
    expect(r.counts).toMatchObject({ identityChanges: 0, identityConflicts: 1 });
    expect(count('SELECT count(*) FROM contacts')).toBe(2);
    expect(count(`SELECT count(*) FROM contacts WHERE user_id = '${OLD_BSUID}'`)).toBe(1);
    // The notice is filed in the thread of the contact it speaks of.
    const threadOfOld = t.db
      .prepare(`SELECT m.type FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id WHERE k.user_id = ? ORDER BY m.id`)
      .pluck()
      .all(OLD_BSUID);
    expect(threadOfOld).toEqual(['text', 'system']);
  });

  it('keeps a security-code notice and the user_id_update field without touching the contact', () => {
    apply(text({ waId: OLD_NUMBER, userId: OLD_BSUID }, 'Hallo'));
    const r = apply(systemNotice({ waId: OLD_NUMBER }, { type: 'customer_identity_changed', identity: 'abc', customer: OLD_NUMBER }));
    expect(r.counts).toMatchObject({ messages: 1, identityChanges: 0 });
    const body = {
      object: 'whatsapp_business_account',
      entry: [{ id: WABA_ID, changes: [{ field: 'user_id_update', value: { metadata: { phone_number_id: PHONE_NUMBER_ID }, user_id: NEW_BSUID } }] }],
    };
    const ignored = applyWebhook(t.db, WebhookSchema.parse(body), { receivedAt: Date.now() });
    expect(ignored.counts).toMatchObject({ ignoredChanges: 1, identityChanges: 0 });
    expect(onlyContact()).toMatchObject({ wa_id: OLD_NUMBER, user_id: OLD_BSUID });
  });
});
