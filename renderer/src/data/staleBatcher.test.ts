import { QueryClient } from '@tanstack/react-query';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createStaleBatcher, keys } from './queries';

describe('push events during a backlog burst', () => {
  afterEach(() => vi.useRealTimers());

  it('end in one refetch of the lists and one per touched thread, never cancelling one under way', () => {
    vi.useFakeTimers();
    const qc = new QueryClient();
    const calls: { key: string; cancelRefetch: boolean | undefined }[] = [];
    vi.spyOn(qc, 'invalidateQueries').mockImplementation(async (filters, options) => {
      calls.push({ key: JSON.stringify(filters?.queryKey), cancelRefetch: options?.cancelRefetch });
    });
    const stale = createStaleBatcher(qc, 100);
    for (let i = 0; i < 500; i++) stale.conversation(1 + (i % 3), true);
    stale.conversation(7, false);
    stale.thread(9);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(100);
    const byKey = calls.map((c) => c.key).sort();
    expect(byKey).toEqual(
      [keys.allConversations, keys.conversation(1), keys.conversation(2), keys.conversation(3), keys.conversation(7), keys.messages(1), keys.messages(2), keys.messages(3), keys.messages(9)]
        .map((k) => JSON.stringify(k))
        .sort(),
    );
    expect(calls.every((c) => c.cancelRefetch === false)).toBe(true);

    // The next event opens a new window.
    calls.length = 0;
    stale.conversation(2, false);
    vi.advanceTimersByTime(99);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls.map((c) => c.key).sort()).toEqual([JSON.stringify(keys.allConversations), JSON.stringify(keys.conversation(2))].sort());
    stale.dispose();
  });
});
