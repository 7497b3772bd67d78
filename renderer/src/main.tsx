import './zodConfig';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { I18nProvider } from './i18n';
import { createRpcClient, pickTransport, RpcContext, RpcError } from './rpc';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refused call (bad input, wrong role) will not succeed on retry; a lost link will, once it returns.
      retry: (count, err) => count < 2 && err instanceof RpcError && err.code === 'UNAVAILABLE',
      staleTime: 10_000,
    },
  },
});

const root = document.getElementById('root');
const transport = pickTransport();
if (root) {
  performance.mark('clinic-inbox:boot');
  createRoot(root).render(
    <StrictMode>
      <I18nProvider>
        {transport ? (
          <RpcContext.Provider value={createRpcClient(transport)}>
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
