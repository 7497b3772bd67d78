export { pickTransport, type Transport } from './transport';
export { createRpcClient, RpcError, type RpcClient } from './client';
export { RpcContext, useRpc } from './context';
