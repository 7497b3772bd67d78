import { useInfiniteQuery, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect } from 'react';
import type { ConversationSummary, MessageView, Role, Whoami } from '../../../shared/rpc';
import { useRpc, type RpcClient } from '../rpc';
import { conversationsQuery, keys, type InboxFilter } from './prefetch';

export { keys, type InboxFilter } from './prefetch';

/**
 * Whether this window may load the clinic's data now: a session that is signed in and not locked.
 * The App provides it around the desk; every query below (and the admin's and auditor's screens)
 * waits while it is false, so a locked desk asks nothing that the core would refuse.
 */
export const DataAccessContext = createContext(false);
export function useDataAccess(): boolean {
  return useContext(DataAccessContext);
}

export function useRelayStatus() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.relay, queryFn: () => rpc.call('relay.status', {}), enabled: useDataAccess() });
}

export function useWhatsAppStatus() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.whatsapp, queryFn: () => rpc.call('whatsapp.status', {}), enabled: useDataAccess() });
}

/** Admins only: whether the IT-admin recovery key exists (the first-run wizard's last step). */
export function useRecoveryStatus(enabled: boolean) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useQuery({ queryKey: keys.recovery, queryFn: () => rpc.call('recovery.status', {}), enabled: enabled && access });
}

/** Who this window is signed in as (`signedIn: false` before sign-in); refreshed on `session.changed` and refusals. */
export function useWhoami() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.whoami, queryFn: () => rpc.call('session.whoami', {}), staleTime: Infinity, retry: false });
}

export type SignedIn = Extract<Whoami, { signedIn: true }>;

/** The signed-in user, or null. */
export function useMe(): SignedIn | null {
  const data = useWhoami().data;
  return data?.signedIn ? data : null;
}

export function useHasRole(role: Role): boolean {
  return useMe()?.roles.includes(role) ?? false;
}

/** Whether the installation has an admin yet, and who signed in at this desk lately (the sign-in screen). */
export function useAuthStatus() {
  const rpc = useRpc();
  return useQuery({ queryKey: keys.authStatus, queryFn: () => rpc.call('auth.status', {}), staleTime: 0, retry: false });
}

export function useConversations(filter: InboxFilter, enabled = true) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useInfiniteQuery({
    ...conversationsQuery(rpc, filter),
    enabled: enabled && access,
    // Push events keep the list fresh; a refetch on every focus would only add load on big clinics.
    refetchOnWindowFocus: false,
  });
}

export function useConversation(id: number | null) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useQuery({
    queryKey: keys.conversation(id ?? 0),
    queryFn: () => rpc.call('conversations.get', { conversationId: id! }),
    enabled: id !== null && access,
  });
}

export function useMessages(id: number | null) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useInfiniteQuery({
    queryKey: keys.messages(id ?? 0),
    queryFn: ({ pageParam }) => rpc.call('messages.list', { conversationId: id!, limit: 50, ...(pageParam ? { before: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    enabled: id !== null && access,
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
  const access = useDataAccess();
  return useQuery({
    queryKey: keys.search(query),
    queryFn: () => rpc.call('search.messages', { query, limit: 30 }),
    enabled: query.trim().length > 0 && access,
    staleTime: 5_000,
  });
}

/** Contacts by name, number (any format) or notes: shown above the message hits. */
export function useContactSearch(query: string) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useQuery({
    queryKey: [...keys.search(query), 'contacts'],
    queryFn: () => rpc.call('search.contacts', { query, limit: 10 }),
    enabled: query.trim().length > 0 && access,
    staleTime: 5_000,
  });
}

export function useTemplates(enabled: boolean) {
  const rpc = useRpc();
  const access = useDataAccess();
  return useQuery({ queryKey: keys.templates, queryFn: () => rpc.call('templates.list', {}), enabled: enabled && access, staleTime: 60_000 });
}

/** Turns the core's push events into cache updates, so the screen follows without reloads. */
export function useCoreEvents(onMessage?: (conversationId: number) => void): void {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(() => subscribeCoreEvents(rpc, qc, onMessage), [rpc, qc, onMessage]);
}

/**
 * Coalesces what push events make stale. A clinic catching up on a backlog gets hundreds of events a
 * second; invalidating per event would refetch every loaded list page per event, and TanStack's
 * default would cancel each refetch for the next one, so the list could lag behind the whole burst.
 * Instead each window of `windowMs` ends in one refetch of the lists and one per touched thread,
 * none cancelling a fetch already under way.
 */
export function createStaleBatcher(qc: QueryClient, windowMs = 100) {
  let lists = false;
  const conversations = new Set<number>();
  const threads = new Set<number>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const options = { cancelRefetch: false } as const;

  function flush(): void {
    timer = null;
    if (lists) void qc.invalidateQueries({ queryKey: keys.allConversations }, options);
    for (const id of conversations) void qc.invalidateQueries({ queryKey: keys.conversation(id) }, options);
    for (const id of threads) void qc.invalidateQueries({ queryKey: keys.messages(id) }, options);
    lists = false;
    conversations.clear();
    threads.clear();
  }
  function schedule(): void {
    timer ??= setTimeout(flush, windowMs);
  }
  return {
    conversation(id: number, withThread: boolean): void {
      lists = true;
      conversations.add(id);
      if (withThread) threads.add(id);
      schedule();
    },
    thread(id: number): void {
      threads.add(id);
      schedule();
    },
    dispose(): void {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

function subscribeCoreEvents(rpc: RpcClient, qc: QueryClient, onMessage?: (conversationId: number) => void): () => void {
  const stale = createStaleBatcher(qc);
  const offEvents = rpc.on((event, payload) => {
    switch (event) {
      case 'relay.stateChanged':
        qc.setQueryData(keys.relay, payload as never);
        break;
      case 'whatsapp.stateChanged':
        qc.setQueryData(keys.whatsapp, payload as never);
        break;
      case 'message.updated':
        stale.thread((payload as { conversationId: number }).conversationId);
        break;
      case 'message.received':
      case 'message.statusChanged':
      case 'conversation.updated': {
        const { conversationId } = payload as { conversationId: number };
        stale.conversation(conversationId, event !== 'conversation.updated');
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
    stale.dispose();
    offEvents();
    offLink();
  };
}
