import { createContext, useContext } from 'react';
import type { RpcClient } from './client';

export const RpcContext = createContext<RpcClient | null>(null);

export function useRpc(): RpcClient {
  const rpc = useContext(RpcContext);
  if (!rpc) throw new Error('useRpc outside RpcContext');
  return rpc;
}
