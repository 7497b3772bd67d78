import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../../shared/errors';
import { WebhookSchema } from '../../../../shared/whatsapp/webhook';
import { applyWebhook } from '../../ingest/apply';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { webhookBody } from '../../testing/whatsappPayloads';
import { getContact, updateContact } from './contacts';
import { assignConversation, listConversations, markConversationRead, setConversationStatus, type ConversationFilter } from './conversations';
import { listThread } from './messages';
import { searchMessages, toFtsQuery } from './search';

let t: TestDb;
beforeEach(() => {
  t = createTestDb();
});
afterEach(() => t.cleanup());

/** Patient `i` writes `texts`, one second apart starting at `at` (Unix seconds). */
function patientWrites(i: number, at: number, ...texts: string[]) {
  const waId = `4915100000${String(i).padStart(3, '0')}`;
  applyWebhook(
    t.db,
    WebhookSchema.parse(
      webhookBody({
        contacts: [{ wa_id: waId, profile: { name: `Patient ${i}` } }],
        messages: texts.map((body, k) => ({ from: waId, id: `wamid.P${i}M${at + k}`, timestamp: String(at + k), type: 'text', text: { body } })),
      }),
    ),
    { receivedAt: 1 },
  );
}

function allPages(filter: ConversationFilter, limit: number) {
  const ids: number[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = listConversations(t.db, { filter, limit, cursor });
    ids.push(...page.items.map((c) => c.id));
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor && pages < 100);
  return ids;
}

describe('conversations', () => {
  it('pages the inbox by last activity with keyset cursors, no row twice or missing', () => {
    // Patients write in an order unlike their ids; several at the same second to test the tie-break.
    for (let i = 1; i <= 23; i += 1) patientWrites(i, 1760000000 + ((i * 7) % 10), `Nachricht ${i}`);
    const ids = allPages({ kind: 'all' }, 5);
    expect(ids).toHaveLength(23);
    expect(new Set(ids).size).toBe(23);
    const activity = ids.map((id) => listConversations(t.db, { limit: 200 }).items.find((c) => c.id === id)!.lastActivityAt);
    expect([...activity].sort((a, b) => b - a)).toEqual(activity);
    const first = listConversations(t.db, { limit: 5 });
    expect(first.items[0]).toMatchObject({ contactName: expect.stringMatching(/^Patient/), unreadCount: 1, lastMessage: { direction: 'inbound', type: 'text' } });
  });

  it('filters unread, assigned to a user and resolved', () => {
    for (let i = 1; i <= 6; i += 1) patientWrites(i, 1760000000 + i, `Hallo ${i}`);
    const all = listConversations(t.db).items;
    markConversationRead(t.db, all[0]!.id, 2);
    assignConversation(t.db, all[1]!.id, 'user-anna', 2);
    assignConversation(t.db, all[2]!.id, 'user-anna', 2);
    assignConversation(t.db, all[3]!.id, 'user-ben', 2);
    setConversationStatus(t.db, all[2]!.id, 'resolved', 2);
    setConversationStatus(t.db, all[4]!.id, 'resolved', 2);

    expect(allPages({ kind: 'all' }, 2)).toEqual([all[0]!.id, all[1]!.id, all[3]!.id, all[5]!.id]);
    expect(allPages({ kind: 'unread' }, 2)).toEqual(all.slice(1).map((c) => c.id));
    expect(allPages({ kind: 'assigned', userId: 'user-anna' }, 2)).toEqual([all[1]!.id]);
    expect(allPages({ kind: 'resolved' }, 2)).toEqual([all[2]!.id, all[4]!.id]);
    expect(() => listConversations(t.db, { cursor: 'garbage' })).toThrow(CodedError);
  });
});

describe('threads', () => {
  it('pages a thread newest first and continues with older messages', () => {
    patientWrites(1, 1760000000, ...Array.from({ length: 120 }, (_, k) => `Text ${k}`));
    const conversationId = listConversations(t.db).items[0]!.id;
    const first = listThread(t.db, { conversationId, limit: 50 });
    expect(first.items.map((m) => m.text).slice(0, 2)).toEqual(['Text 119', 'Text 118']);
    const second = listThread(t.db, { conversationId, limit: 50, cursor: first.nextCursor });
    const third = listThread(t.db, { conversationId, limit: 50, cursor: second.nextCursor });
    expect(second.items[0]!.text).toBe('Text 69');
    expect(third.items).toHaveLength(20);
    expect(third.nextCursor).toBeNull();
    expect(third.items.at(-1)!.text).toBe('Text 0');
  });
});

describe('search', () => {
  beforeEach(() => {
    patientWrites(1, 1760000000, 'Können Sie mir das Rezept für Ibuprofen schicken?', 'Danke schön');
    patientWrites(2, 1760000100, 'Termin bei Frau Dr. Müller verschieben', 'rezeptfrei?');
  });

  it('ignores accents and case, matches word prefixes, and marks the matches in segments', () => {
    const hits = searchMessages(t.db, { query: 'muller' }).items;
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({ contactName: 'Patient 2', direction: 'inbound' });
    expect(hits[0]!.snippet.filter((s) => s.match).map((s) => s.text)).toEqual(['Müller']);
    expect(hits[0]!.snippet.map((s) => s.text).join('')).toBe('Termin bei Frau Dr. Müller verschieben');

    expect(searchMessages(t.db, { query: 'KONNEN rezept' }).items).toHaveLength(1);
    // The last word is also a prefix: "rezept" finds "rezeptfrei" too, after the whole-word hits
    // (each part newest first), though "rezeptfrei?" is the newer message.
    expect(searchMessages(t.db, { query: 'rezept' }).items.map((h) => h.snippet.map((s) => s.text).join(''))).toEqual([
      'Können Sie mir das Rezept für Ibuprofen schicken?',
      'rezeptfrei?',
    ]);
    expect(searchMessages(t.db, { query: 'rezeptf' }).items.map((h) => h.snippet.map((s) => s.text).join(''))).toEqual(['rezeptfrei?']);
  });

  it('treats FTS syntax as plain text and pages results', () => {
    for (const q of ['"', 'OR', 'NEAR(', '*', 'a AND -b', "'; DROP TABLE messages; --"]) {
      expect(() => searchMessages(t.db, { query: q })).not.toThrow();
    }
    expect(toFtsQuery('say "hi"')).toBe('text : ("say" """hi"""*)');
    const first = searchMessages(t.db, { query: 'rezept', limit: 1 });
    expect(first.items).toHaveLength(1);
    const second = searchMessages(t.db, { query: 'rezept', limit: 1, cursor: first.nextCursor });
    expect(second.items).toHaveLength(1);
    expect(second.items[0]!.messageId).not.toBe(first.items[0]!.messageId);
    expect(second.nextCursor).toBeNull();
    // Whole-word hits page on by themselves before the prefix-only ones begin.
    patientWrites(3, 1760000200, 'Rezept bitte', 'Noch ein Rezept');
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page = searchMessages(t.db, { query: 'rezept', limit: 2, cursor });
      pages.push(page.items.map((h) => h.snippet.map((x) => x.text).join('')));
      cursor = page.nextCursor;
    } while (cursor && pages.length < 5);
    expect(pages).toEqual([['Noch ein Rezept', 'Rezept bitte'], ['Können Sie mir das Rezept für Ibuprofen schicken?', 'rezeptfrei?']]);
  });

  it('can be limited to one conversation', () => {
    const conversationId = listConversations(t.db).items.find((c) => c.contactName === 'Patient 1')!.id;
    expect(searchMessages(t.db, { query: 'rezept', conversationId }).items.map((h) => h.conversationId)).toEqual([conversationId]);
  });
});

describe('contacts', () => {
  it('keeps the clinic-edited name and notes, and the inbox shows the edited name', () => {
    patientWrites(1, 1760000000, 'Hallo');
    const contactId = listConversations(t.db).items[0]!.contactId;
    updateContact(t.db, contactId, { displayName: 'Frau Muster (Knie)', notes: 'Rückruf vormittags' }, 5);
    expect(getContact(t.db, contactId)).toMatchObject({ display_name: 'Frau Muster (Knie)', notes: 'Rückruf vormittags', profile_name: 'Patient 1' });
    expect(listConversations(t.db).items[0]!.contactName).toBe('Frau Muster (Knie)');
    // A new webhook refreshes the WhatsApp profile name but never the clinic's own name.
    patientWrites(1, 1760000100, 'Noch da?');
    expect(listConversations(t.db).items[0]!.contactName).toBe('Frau Muster (Knie)');
    expect(() => updateContact(t.db, 999, { notes: 'x' }, 5)).toThrow(CodedError);
  });
});
