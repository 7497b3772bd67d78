import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { conversationsQuery, keys } from './data/prefetch';
import { I18nProvider } from './i18n';
import type { FirstScreen } from './link';
import { RpcContext, RpcError, type RpcClient } from './rpc';

export function start(root: HTMLElement, rpc: RpcClient | null, firstScreen: FirstScreen | null): void {
  const queryClient = new QueryClient({
    defaultOptions: {
      queries: {
        // A refused call (bad input, wrong role) will not succeed on retry; a lost link will, once it returns.
        retry: (count, err) => count < 2 && err instanceof RpcError && err.code === 'UNAVAILABLE',
        staleTime: 10_000,
      },
    },
  });
  if (rpc && firstScreen) {
    // The answers link.ts asked for before React loaded seed the cache under the hooks' own keys.
    void queryClient.prefetchQuery({ queryKey: keys.whoami, queryFn: () => firstScreen.whoami });
    void queryClient.prefetchQuery({ queryKey: keys.authStatus, queryFn: () => firstScreen.authStatus });
    void queryClient.prefetchQuery({ queryKey: keys.relay, queryFn: () => firstScreen.relay });
    void queryClient.prefetchQuery({ queryKey: keys.whatsapp, queryFn: () => firstScreen.whatsapp });
    void queryClient.prefetchInfiniteQuery({ ...conversationsQuery(rpc, 'all'), queryFn: () => firstScreen.conversations });
  }
  createRoot(root).render(
    <StrictMode>
      <I18nProvider>
        {rpc ? (
          <RpcContext.Provider value={rpc}>
            <QueryClientProvider client={queryClient}>
              <App />
            </QueryClientProvider>
          </RpcContext.Provider>
        ) : (
          <p className="state full">This page must be opened from Clinic Inbox or its test harness.</p>
        )}
      </I18nProvider>
    </StrictMode>,
  );
}
