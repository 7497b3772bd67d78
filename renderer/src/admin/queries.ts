import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useDataAccess } from '../data/queries';
import { useEffect } from 'react';
import { useRpc } from '../rpc';

export const adminKeys = {
  users: ['admin', 'users'] as const,
  sessions: ['admin', 'sessions'] as const,
  settings: ['admin', 'settings'] as const,
  alerts: ['admin', 'alerts'] as const,
};

/** Sessions and sign-ins change without a push event; a short poll keeps the admin's view current. */
const POLL_MS = 5_000;

export function useUsers() {
  const rpc = useRpc();
  return useQuery({ queryKey: adminKeys.users, queryFn: () => rpc.call('users.list', {}), refetchInterval: POLL_MS, enabled: useDataAccess() });
}

export function useSessions() {
  const rpc = useRpc();
  return useQuery({ queryKey: adminKeys.sessions, queryFn: () => rpc.call('sessions.list', {}), refetchInterval: POLL_MS, enabled: useDataAccess() });
}

export function useSecuritySettings() {
  const rpc = useRpc();
  return useQuery({ queryKey: adminKeys.settings, queryFn: () => rpc.call('security.getSettings', {}), enabled: useDataAccess() });
}

/** Open security alerts, refetched when the core pushes `security.alert`. */
export function useSecurityAlerts() {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(
    () =>
      rpc.on((event) => {
        if (event === 'security.alert') void qc.invalidateQueries({ queryKey: adminKeys.alerts });
      }),
    [rpc, qc],
  );
  return useQuery({ queryKey: adminKeys.alerts, queryFn: () => rpc.call('security.alerts', { includeAcknowledged: false }), enabled: useDataAccess() });
}
