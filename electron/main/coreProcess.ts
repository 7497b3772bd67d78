// The appliance core inside Electron: started by main with `utilityProcess.fork` and spoken to over
// its parent port with the bridge frames of shared/bridge.ts. Plain Node apart from `parentPort`.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { BridgeUpSchema, type BridgeDown } from '../../shared/bridge';
import { CodedError } from '../../shared/errors';
import type { RpcResult } from '../../shared/rpc';
import { createCoreLogger } from '../core/settings/logFile';
import { startCore } from '../core/startCore';
import type { Connection, Core } from '../core/types';

// Also to size-capped rotating files in the data folder (what "Export diagnostics" includes).
const dataDirArg = parseArgs({ options: { 'data-dir': { type: 'string' } }, strict: false }).values['data-dir'];
const logger = typeof dataDirArg === 'string' ? createCoreLogger({ dataDir: dataDirArg }) : pino({ level: 'info', base: { part: 'core' } });
const port = process.parentPort;
const post = (frame: BridgeDown): void => port.postMessage(frame);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'data-dir': { type: 'string' } }, strict: false });
  const dataDir = values['data-dir'];
  let core: Core | null = null;
  let startError: RpcResult<never> | null = null;
  // Calls arriving while the core opens its database wait for it, instead of failing.
  const ready = (async () => {
    try {
      if (typeof dataDir !== 'string') throw new CodedError('INTERNAL', 'The core was started without a data folder.');
      core = await startCore({ dataDir, logger });
    } catch (err) {
      const coded = err instanceof CodedError ? err : new CodedError('INTERNAL', 'The app core could not start.');
      logger.error({ code: coded.code }, 'core failed to start');
      // Every call now answers with the reason, so the window can tell the IT admin what to fix.
      startError = { ok: false, error: coded.toJSON() };
    }
  })();

  // One connection per window: each starts signed out and signs in as the person at it.
  const connections = new Map<number, Connection>();
  const connectionFor = (c: Core, conn: number): Connection => {
    let connection = connections.get(conn);
    if (!connection) {
      connection = c.connect('electron');
      connection.on((event, payload) => post({ type: 'event', conn, event, payload }));
      connections.set(conn, connection);
    }
    return connection;
  };

  port.on('message', (e) => {
    const frame = BridgeUpSchema.safeParse(e.data);
    if (!frame.success) return;
    if (frame.data.type === 'disconnect') {
      connections.get(frame.data.conn)?.close();
      connections.delete(frame.data.conn);
      return;
    }
    const { id, method, params, conn = 0 } = frame.data;
    void ready
      .then(() => (core ? connectionFor(core, conn).dispatch(method, params) : startError!))
      .catch((): RpcResult<never> => ({ ok: false, error: { code: 'INTERNAL', message: 'The request failed inside the app.' } }))
      .then((result) => post({ type: 'result', id, result }));
  });

  const stop = (): void => {
    void ready.then(() => (core ? core.close() : undefined)).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
