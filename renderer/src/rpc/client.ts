import type { ErrorCode, ErrorDetails } from '../../../shared/errors';
import { isRpcEventName, rpcEvents, type RpcEventName, type RpcEventPayload, type RpcInput, type RpcMethod, type RpcOutput } from '../../../shared/rpc';
import type { Transport } from './transport';

export class RpcError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** A machine-readable reason beside the core's English message (PASSWORD_REJECTED's rule). */
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export type EventHandler = <E extends RpcEventName>(event: E, payload: RpcEventPayload<E>) => void;

/** The typed face of the RPC contract: results come back as values, failures as `RpcError`. */
export interface RpcClient {
  call<M extends RpcMethod>(method: M, params: RpcInput<M>): Promise<RpcOutput<M>>;
  on(handler: EventHandler): () => void;
  onLink(listener: (up: boolean) => void): () => void;
  readonly kind: Transport['kind'];
}

export function createRpcClient(transport: Transport): RpcClient {
  return {
    kind: transport.kind,
    async call(method, params) {
      const result = await transport.invoke(method, params);
      if (!result.ok) throw new RpcError(result.error.code, result.error.message, result.error.details);
      // The core validated its output against the contract; trusting the type here is the point of the contract.
      return result.value as RpcOutput<typeof method>;
    },
    on(handler) {
      return transport.on((event, payload) => {
        if (!isRpcEventName(event)) return;
        const parsed = rpcEvents[event].safeParse(payload);
        if (parsed.success) handler(event, parsed.data as RpcEventPayload<typeof event>);
      });
    },
    onLink: (listener) => transport.onLink(listener),
  };
}
