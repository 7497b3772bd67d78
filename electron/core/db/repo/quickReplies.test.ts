import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError } from '../../../../shared/errors';
import { QUICK_REPLIES_MAX, QUICK_REPLY_MAX_LENGTH } from '../../../../shared/rpc';
import { createTestDb, type TestDb } from '../../testing/testDb';
import { addQuickReply, countQuickReplies, listQuickReplies, removeQuickReply } from './quickReplies';

let t: TestDb;
beforeEach(() => {
  t = createTestDb();
});
afterEach(() => t.cleanup());

const texts = () => listQuickReplies(t.db).map((r) => r.text);

describe('quick replies repository', () => {
  it('keeps replies in the order they were saved, with who saved them, and removes them', () => {
    const a = addQuickReply(t.db, { text: '  Ihr Rezept liegt bereit.  ', userId: 'anna' }, 100);
    const b = addQuickReply(t.db, { text: 'Bis morgen!', userId: 'ben' }, 200);
    addQuickReply(t.db, { text: 'Gute Besserung.', userId: 'anna' }, 300);
    expect(a).toMatchObject({ created: true, reply: { text: 'Ihr Rezept liegt bereit.', created_by: 'anna', created_at: 100, updated_at: 100 } });
    expect(texts()).toEqual(['Ihr Rezept liegt bereit.', 'Bis morgen!', 'Gute Besserung.']);

    expect(removeQuickReply(t.db, b.reply.id)).toBe(true);
    expect(removeQuickReply(t.db, b.reply.id)).toBe(false);
    // A reply saved after a removal goes to the end, not into the gap.
    addQuickReply(t.db, { text: 'Bis morgen!', userId: 'ben' }, 400);
    expect(texts()).toEqual(['Ihr Rezept liegt bereit.', 'Gute Besserung.', 'Bis morgen!']);
  });

  it('returns the saved one for a text saved twice, making no double', () => {
    const first = addQuickReply(t.db, { text: 'Bis morgen!', userId: 'anna' }, 100);
    const again = addQuickReply(t.db, { text: 'Bis morgen! ', userId: 'ben' }, 200);
    expect(again).toEqual({ created: false, reply: first.reply });
    expect(countQuickReplies(t.db)).toBe(1);
  });

  it('refuses an empty or too long text and a full list with a clear error, changing nothing', () => {
    addQuickReply(t.db, { text: 'Bis morgen!', userId: 'anna' }, 1);
    const refused = (text: string) => {
      try {
        addQuickReply(t.db, { text, userId: 'anna' }, 2);
      } catch (err) {
        return err;
      }
      return null;
    };
    const long = `Befund ${'x'.repeat(QUICK_REPLY_MAX_LENGTH)}`;
    const tooLong = refused(long);
    expect(tooLong).toBeInstanceOf(CodedError);
    expect(tooLong).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining(`1 to ${QUICK_REPLY_MAX_LENGTH} characters`) });
    // The message gives the length, never the text.
    expect((tooLong as Error).message).not.toContain('Befund');
    expect(refused('   ')).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(refused('x'.repeat(QUICK_REPLY_MAX_LENGTH))).toBeNull();

    for (let i = countQuickReplies(t.db); i < QUICK_REPLIES_MAX; i += 1) addQuickReply(t.db, { text: `Antwort ${i}`, userId: 'anna' }, 3);
    expect(countQuickReplies(t.db)).toBe(QUICK_REPLIES_MAX);
    const before = texts();
    expect(refused('Eine zu viel')).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`already ${QUICK_REPLIES_MAX} quick replies`) });
    // A text already saved is still answered when the list is full: it adds nothing.
    expect(addQuickReply(t.db, { text: 'Bis morgen!', userId: 'ben' }, 4).created).toBe(false);
    expect(texts()).toEqual(before);
  });
});
