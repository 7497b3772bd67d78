import type { RpcInput } from '../../../shared/rpc';
import type { RpcClient } from '../rpc/client';

// Query keys and shapes shared by the hooks and the start-up code.

export type InboxFilter = RpcInput<'inbox.listConversations'>['filter'] & string;

export const keys = {
  relay: ['relay'] as const,
  whatsapp: ['whatsapp'] as const,
  whoami: ['whoami'] as const,
  authStatus: ['auth-status'] as const,
  recovery: ['recovery'] as const,
  conversations: (filter: InboxFilter) => ['conversations', filter] as const,
  allConversations: ['conversations'] as const,
  conversation: (id: number) => ['conversation', id] as const,
  messages: (id: number) => ['messages', id] as const,
  search: (q: string) => ['search', q] as const,
  templates: ['templates'] as const,
};

export function conversationsQuery(rpc: RpcClient, filter: InboxFilter) {
  return {
    queryKey: keys.conversations(filter),
    queryFn: ({ pageParam }: { pageParam: string | null }) =>
      rpc.call('inbox.listConversations', { filter, limit: 50, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (last: { nextCursor: string | null }) => last.nextCursor,
  };
}

