import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import type { AuditFilter } from '../../../shared/rpc';
import { useRpc } from '../rpc';

export const auditKeys = {
  entries: (filter: AuditFilter) => ['audit', 'entries', filter] as const,
  patients: (query: string) => ['audit', 'patients', query] as const,
  users: ['audit', 'users'] as const,
};

export function useAuditEntries(filter: AuditFilter) {
  const rpc = useRpc();
  return useInfiniteQuery({
    queryKey: auditKeys.entries(filter),
    queryFn: ({ pageParam }) => rpc.call('audit.query', { filter, limit: 100, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    refetchOnWindowFocus: false,
  });
}

/** Searched only when the auditor asks (each search is itself an audited read). */
export function usePatientSearch(query: string) {
  const rpc = useRpc();
  return useQuery({
    queryKey: auditKeys.patients(query),
    queryFn: () => rpc.call('audit.findPatients', { query }),
    enabled: query.trim().length > 0,
    staleTime: 30_000,
  });
}

export function useAuditUsers() {
  const rpc = useRpc();
  return useQuery({ queryKey: auditKeys.users, queryFn: () => rpc.call('users.list', {}), staleTime: 60_000 });
}
