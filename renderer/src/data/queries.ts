import { useInfiniteQuery, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import type { ConversationSummary, MessageView } from '../../../shared/rpc';
import { useRpc, type RpcClient } from '../rpc';
import { conversationsQuery, keys, type InboxFilter } from './prefetch';

export { keys, type InboxFilter } from './prefetch';

export function useRelayStatus() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.relay, queryFn: () => rpc.call('relay.status', {}) });
}

export function useWhatsAppStatus() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.whatsapp, queryFn: () => rpc.call('whatsapp.status', {}) });
}

/** Admins only: whether the IT-admin recovery key exists (the first-run wizard's last step). */
export function useRecoveryStatus(enabled: boolean) {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.recovery, queryFn: () => rpc.call('recovery.status', {}), enabled });
}

export function useWhoami() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.whoami, queryFn: () => rpc.call('session.whoami', {}), staleTime: Infinity });
}

export function useConversations(filter: InboxFilter, enabled = true) {
  const rpc = useRpc();
  return useInfiniteQuery({
    ...conversationsQuery(rpc, filter),
    enabled,
    // Push events keep the list fresh; a refetch on every focus would only add load on big clinics.
    refetchOnWindowFocus: false,
  });
}

export function useConversation(id: number | null) {
  const rpc = useRpc();
  return useQuery({
    queryKey: keys.conversation(id ?? 0),
    queryFn: () => rpc.call('conversations.get', { conversationId: id! }),
    enabled: id !== null,
  });
}

export function useMessages(id: number | null) {
  const rpc = useRpc();
  return useInfiniteQuery({
    queryKey: keys.messages(id ?? 0),
    queryFn: ({ pageParam }) => rpc.call('messages.list', { conversationId: id!, limit: 50, ...(pageParam ? { before: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    enabled: id !== null,
    refetchOnWindowFocus: false,
  });
}

/** Messages of all loaded pages, oldest first, whatever order the core pages them in. */
export function flattenMessages(pages: { items: MessageView[] }[] | undefined): MessageView[] {
  const seen = new Map<number, MessageView>();
  for (const page of pages ?? []) for (const m of page.items) seen.set(m.id, m);
  return [...seen.values()].sort((a, b) => a.at - b.at || a.id - b.id);
}

export function flattenConversations(pages: { items: ConversationSummary[] }[] | undefined): ConversationSummary[] {
  const seen = new Set<number>();
  const out: ConversationSummary[] = [];
  for (const page of pages ?? [])
    for (const c of page.items)
      if (!seen.has(c.id)) {
        seen.add(c.id);
        out.push(c);
      }
  return out;
}

export function useSearch(query: string) {
  const rpc = useRpc();
  return useQuery({
    queryKey: keys.search(query),
    queryFn: () => rpc.call('search.messages', { query, limit: 30 }),
    enabled: query.trim().length > 0,
    staleTime: 5_000,
  });
}

export function useTemplates(enabled: boolean) {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.templates, queryFn: () => rpc.call('templates.list', {}), enabled, staleTime: 60_000 });
}

/** Turns the core's push events into cache updates, so the screen follows without reloads. */
export function useCoreEvents(onMessage?: (conversationId: number) => void): void {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(() => subscribeCoreEvents(rpc, qc, onMessage), [rpc, qc, onMessage]);
}

function subscribeCoreEvents(rpc: RpcClient, qc: QueryClient, onMessage?: (conversationId: number) => void): () => void {
  const offEvents = rpc.on((event, payload) => {
    switch (event) {
      case 'relay.stateChanged':
        qc.setQueryData(keys.relay, payload as never);
        break;
      case 'whatsapp.stateChanged':
        qc.setQueryData(keys.whatsapp, payload as never);
        break;
      case 'message.updated': {
        const { conversationId } = payload as { conversationId: number };
        void qc.invalidateQueries({ queryKey: keys.messages(conversationId) });
        break;
      }
      case 'message.received':
      case 'message.statusChanged':
      case 'conversation.updated': {
        const { conversationId } = payload as { conversationId: number };
        void qc.invalidateQueries({ queryKey: keys.allConversations });
        void qc.invalidateQueries({ queryKey: keys.conversation(conversationId) });
        if (event !== 'conversation.updated') void qc.invalidateQueries({ queryKey: keys.messages(conversationId) });
        if (event === 'message.received') onMessage?.(conversationId);
        break;
      }
    }
  });
  // After the page ⇄ core link returns, anything may have changed while we were away.
  const offLink = rpc.onLink((up) => {
    if (up) void qc.invalidateQueries();
  });
  return () => {
    offEvents();
    offLink();
  };
}
