import './zodConfig';
import type { RpcOutput } from '../../shared/rpc';
import { createRpcClient, type RpcClient } from './rpc/client';
import { pickTransport } from './rpc/transport';

/**
 * The first module to run (main.tsx imports it before React and the screens): it opens the
 * connection to the core and queues the requests for what the first screen shows, so they go out
 * the moment the socket opens instead of one after another as components mount.
 */
export interface FirstScreen {
  whoami: Promise<RpcOutput<'session.whoami'>>;
  authStatus: Promise<RpcOutput<'auth.status'>>;
  relay: Promise<RpcOutput<'relay.status'>>;
  whatsapp: Promise<RpcOutput<'whatsapp.status'>>;
  conversations: Promise<RpcOutput<'inbox.listConversations'>>;
}

const transport = pickTransport();
export const rpc: RpcClient | null = transport ? createRpcClient(transport) : null;

export const firstScreen: FirstScreen | null = rpc
  ? {
      // Who this window is decides the first screen; the rest answers only once signed in (an
      // Electron window that keeps its session across a reload).
      whoami: rpc.call('session.whoami', {}),
      authStatus: rpc.call('auth.status', {}),
      relay: rpc.call('relay.status', {}),
      whatsapp: rpc.call('whatsapp.status', {}),
      conversations: rpc.call('inbox.listConversations', { filter: 'all', limit: 50 }),
    }
  : null;
// Handled where they are used; an unpaired core refusing the list must not be an unhandled rejection.
firstScreen?.conversations.catch(() => undefined);
firstScreen?.relay.catch(() => undefined);
firstScreen?.whatsapp.catch(() => undefined);
firstScreen?.whoami.catch(() => undefined);
firstScreen?.authStatus.catch(() => undefined);
