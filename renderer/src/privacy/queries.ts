import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { useRpc } from '../rpc';

export const privacyKeys = {
  consent: (contactId: number) => ['privacy', 'consent', contactId] as const,
  requests: (contactId: number | undefined, state: string) => ['privacy', 'requests', contactId ?? 'all', state] as const,
  hold: (contactId: number) => ['privacy', 'hold', contactId] as const,
  retention: ['privacy', 'retention'] as const,
  preview: ['privacy', 'retention', 'preview'] as const,
  settings: ['privacy', 'settings'] as const,
};

/** Refetches what a push event says changed (a keyword on WhatsApp, a request, a retention run). */
function usePrivacyEvents(): void {
  const rpc = useRpc();
  const qc = useQueryClient();
  useEffect(
    () =>
      rpc.on((event, payload) => {
        if (event === 'privacy.consentChanged') void qc.invalidateQueries({ queryKey: privacyKeys.consent((payload as { contactId: number }).contactId) });
        if (event === 'privacy.requestReceived') void qc.invalidateQueries({ queryKey: ['privacy', 'requests'] });
        if (event === 'privacy.retentionFinished') void qc.invalidateQueries({ queryKey: privacyKeys.retention });
      }),
    [rpc, qc],
  );
}

export function useConsent(contactId: number) {
  const rpc = useRpc();
  usePrivacyEvents();
  return useQuery({ queryKey: privacyKeys.consent(contactId), queryFn: () => rpc.call('privacy.getConsent', { contactId }) });
}

export function useRequests(contactId: number | undefined, state: 'open' | 'done' | 'all') {
  const rpc = useRpc();
  usePrivacyEvents();
  return useQuery({ queryKey: privacyKeys.requests(contactId, state), queryFn: () => rpc.call('privacy.requests.list', { state, ...(contactId ? { contactId } : {}) }) });
}

export function useLegalHold(contactId: number) {
  const rpc = useRpc();
  return useQuery({ queryKey: privacyKeys.hold(contactId), queryFn: () => rpc.call('privacy.legalHold.get', { contactId }) });
}

export function useRetention() {
  const rpc = useRpc();
  usePrivacyEvents();
  return useQuery({ queryKey: privacyKeys.retention, queryFn: () => rpc.call('privacy.retention.get', {}) });
}

export function useRetentionPreview() {
  const rpc = useRpc();
  return useQuery({ queryKey: privacyKeys.preview, queryFn: () => rpc.call('privacy.retention.preview', {}) });
}

export function usePrivacySettings() {
  const rpc = useRpc();
  return useQuery({ queryKey: privacyKeys.settings, queryFn: () => rpc.call('privacy.getSettings', {}) });
}
