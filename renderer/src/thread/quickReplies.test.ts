// The one-time move of quick replies out of localStorage. The browser test (tests/ui/inbox.test.ts)
// runs it against a real core; here the core's answers are played by a small stand-in, to reach
// the cases a real stack rarely shows (a full list, a link down halfway).
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../../shared/errors';
import { QUICK_REPLIES_MAX, QUICK_REPLY_MAX_LENGTH } from '../../../shared/rpc';
import { RpcError, type RpcClient } from '../rpc';
import { LEGACY_STORAGE_KEY, moveLegacyQuickReplies, parseLegacy } from './quickReplies';

function storage(value: string | null) {
  const map = new Map<string, string>(value === null ? [] : [[LEGACY_STORAGE_KEY, value]]);
  map.set('clinic-inbox.lang', 'de');
  return {
    map,
    getItem: (k: string) => map.get(k) ?? null,
    removeItem: (k: string) => void map.delete(k),
  };
}

/** Answers `quickReplies.add` like the core: trims, one row per text, length and count limits; `down` after n calls. */
function core(opts: { saved?: string[]; downAfter?: number; failWith?: ErrorCode } = {}) {
  const saved = [...(opts.saved ?? [])];
  let calls = 0;
  const rpc: Pick<RpcClient, 'call'> = {
    call: (async (method: string, params: { text: string }) => {
      expect(method).toBe('quickReplies.add');
      calls += 1;
      if (opts.downAfter !== undefined && calls > opts.downAfter) throw new RpcError(opts.failWith ?? 'UNAVAILABLE', 'The app cannot be reached.');
      const text = params.text.trim();
      if (text.length > QUICK_REPLY_MAX_LENGTH) throw new RpcError('VALIDATION_FAILED', 'Invalid input for quickReplies.add: text: Too big');
      if (saved.includes(text)) return { created: false };
      if (saved.length >= QUICK_REPLIES_MAX) throw new RpcError('CONFLICT', 'There are already 200 quick replies.');
      saved.push(text);
      return { created: true };
    }) as RpcClient['call'],
  };
  return { rpc, saved };
}

describe('moving quick replies out of localStorage', () => {
  it('saves every old reply in the database and then deletes the old list, leaving other settings', async () => {
    const s = storage(JSON.stringify(['Ihr Rezept liegt bereit.', ' Bis morgen! ', 'Bis morgen!', 42, '']));
    const c = core({ saved: ['Bis morgen!'] });
    expect(await moveLegacyQuickReplies(c.rpc, s)).toEqual({ moved: 2, refused: 0, kept: false });
    expect(c.saved).toEqual(['Bis morgen!', 'Ihr Rezept liegt bereit.']);
    expect(s.map.has(LEGACY_STORAGE_KEY)).toBe(false);
    expect(s.map.get('clinic-inbox.lang')).toBe('de');
    // Nothing left to move on the next load.
    expect(await moveLegacyQuickReplies(c.rpc, s)).toBeNull();
  });

  it('drops what the core refuses for good (too long, list full) rather than keep it in plaintext', async () => {
    const full = Array.from({ length: QUICK_REPLIES_MAX - 1 }, (_, i) => `Antwort ${i}`);
    const s = storage(JSON.stringify(['x'.repeat(QUICK_REPLY_MAX_LENGTH + 1), 'Passt noch', 'Passt nicht mehr']));
    const c = core({ saved: full });
    expect(await moveLegacyQuickReplies(c.rpc, s)).toEqual({ moved: 1, refused: 2, kept: false });
    expect(c.saved.at(-1)).toBe('Passt noch');
    expect(s.map.has(LEGACY_STORAGE_KEY)).toBe(false);
  });

  it.each(['UNAVAILABLE', 'FORBIDDEN', 'INTERNAL'] as const)('keeps the old list when the core answers %s, and finishes on a later load without doubles', async (code) => {
    const old = JSON.stringify(['Eins', 'Zwei', 'Drei']);
    const s = storage(old);
    const c = core({ downAfter: 1, failWith: code });
    expect(await moveLegacyQuickReplies(c.rpc, s)).toEqual({ moved: 1, refused: 0, kept: true });
    expect(s.map.get(LEGACY_STORAGE_KEY)).toBe(old);

    const later = core({ saved: c.saved });
    expect(await moveLegacyQuickReplies(later.rpc, s)).toEqual({ moved: 3, refused: 0, kept: false });
    expect(later.saved).toEqual(['Eins', 'Zwei', 'Drei']);
    expect(s.map.has(LEGACY_STORAGE_KEY)).toBe(false);
  });

  it('deletes an old list it cannot read: there is nothing to move, and it may hold patient text', async () => {
    for (const raw of ['{not json', '{"a":"Befund"}', '"Befund"']) {
      const s = storage(raw);
      expect(await moveLegacyQuickReplies(core().rpc, s)).toEqual({ moved: 0, refused: 0, kept: false });
      expect(s.map.has(LEGACY_STORAGE_KEY)).toBe(false);
    }
    expect(parseLegacy('[" a ", "a", "b", null]')).toEqual(['a', 'b']);
  });
});
