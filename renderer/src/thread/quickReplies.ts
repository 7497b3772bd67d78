import { useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import type { QuickReply } from '../../../shared/rpc';
import { RpcError, useRpc, type RpcClient } from '../rpc';

/**
 * Saved quick replies live in the core's encrypted database (`quickReplies.*` RPCs), shared by the
 * clinic's desk. What is in the composer is often a reply to one patient, so it must not sit in
 * the browser's storage: earlier versions kept the list in localStorage, which Chromium writes to
 * disk in plaintext. That list is moved into the database once, then deleted.
 */
export const quickRepliesKey = ['quickReplies'] as const;

/** Where versions before the move kept the list: a JSON array of strings. */
export const LEGACY_STORAGE_KEY = 'clinic-inbox.quick-replies';

export interface LegacyMoveResult {
  /** Saved in the database (or already there). */
  moved: number;
  /** Refused for good by the core (too long, or the list is full): dropped rather than kept in plaintext. */
  refused: number;
  /** The core could not be asked (link down, no permission): the old list stays for the next attempt. */
  kept: boolean;
}

/**
 * Moves the old localStorage list into the database, then deletes it. The key is deleted only once
 * every reply has an answer from the core that will not change on a retry (saved, or refused as
 * invalid or over the limit); anything else leaves it for the next load. Saving is idempotent on
 * the text, so an interrupted move repeated later makes no doubles.
 */
export async function moveLegacyQuickReplies(
  rpc: Pick<RpcClient, 'call'>,
  storage: Pick<Storage, 'getItem' | 'removeItem'>,
): Promise<LegacyMoveResult | null> {
  const raw = storage.getItem(LEGACY_STORAGE_KEY);
  if (raw === null) return null;
  const result: LegacyMoveResult = { moved: 0, refused: 0, kept: false };
  for (const text of parseLegacy(raw)) {
    try {
      await rpc.call('quickReplies.add', { text });
      result.moved += 1;
    } catch (err) {
      if (err instanceof RpcError && (err.code === 'VALIDATION_FAILED' || err.code === 'CONFLICT')) result.refused += 1;
      else return { ...result, kept: true };
    }
  }
  storage.removeItem(LEGACY_STORAGE_KEY);
  return result;
}

/** What the old version wrote; anything unreadable is nothing to move (and is deleted all the same). */
export function parseLegacy(raw: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const texts = parsed.filter((x): x is string => typeof x === 'string').map((x) => x.trim());
  return [...new Set(texts.filter((x) => x.length > 0))];
}

// One move per page load, whichever component asks first; a move that could not reach the core
// is tried again the next time a composer mounts.
let legacyMove: Promise<void> | null = null;
function startLegacyMove(rpc: RpcClient, qc: QueryClient): void {
  legacyMove ??= moveLegacyQuickReplies(rpc, localStorage)
    .then((result) => {
      if (result?.kept) legacyMove = null;
      if (result && result.moved > 0) void qc.invalidateQueries({ queryKey: quickRepliesKey });
    })
    .catch(() => {
      legacyMove = null;
    });
}

export interface QuickReplies {
  replies: QuickReply[];
  loading: boolean;
  /** The list could not be loaded. */
  loadError: unknown;
  add(text: string): void;
  remove(id: number): void;
  saving: boolean;
  /** The last save or removal failed (e.g. `CONFLICT`: the list is full). */
  changeError: unknown;
}

export function useQuickReplies(): QuickReplies {
  const rpc = useRpc();
  const qc = useQueryClient();
  // Push events and the refetch after the link returns keep it fresh; no polling.
  const list = useQuery({ queryKey: quickRepliesKey, queryFn: () => rpc.call('quickReplies.list', {}), staleTime: Infinity });
  useEffect(() => startLegacyMove(rpc, qc), [rpc, qc]);
  useEffect(
    () =>
      rpc.on((event) => {
        if (event === 'quickReplies.changed') void qc.invalidateQueries({ queryKey: quickRepliesKey });
      }),
    [rpc, qc],
  );
  const refresh = (): Promise<void> => qc.invalidateQueries({ queryKey: quickRepliesKey });
  const add = useMutation({ mutationFn: (text: string) => rpc.call('quickReplies.add', { text }), onSuccess: refresh });
  const remove = useMutation({ mutationFn: (id: number) => rpc.call('quickReplies.remove', { id }), onSuccess: refresh });
  return {
    replies: list.data ?? [],
    loading: list.isPending,
    loadError: list.error,
    add(text) {
      const trimmed = text.trim();
      if (trimmed) add.mutate(trimmed, { onSuccess: () => remove.reset() });
    },
    remove: (id) => remove.mutate(id, { onSuccess: () => add.reset() }),
    saving: add.isPending,
    changeError: add.error ?? remove.error,
  };
}
