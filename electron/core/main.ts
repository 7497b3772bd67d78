// The headless appliance core: `npm run core -- --data-dir DIR [options]`.
// The Electron shell starts the same `createCore` in a utility process; this entry lets a clinic
// server, the tests and the demo run it without Electron. The only file here that reads argv/env.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { CodedError } from '../../shared/errors';
import { createCore } from './createCore';
import type { Session } from './types';

const USAGE = `Usage: npm run core -- --data-dir DIR [--pair RELAY_URL --code CODE] [--graph-base-url URL] [--log-level LEVEL]
       npm run core -- --data-dir DIR --verify-audit

  --data-dir DIR        where the encrypted database lives (created if missing)
  --pair RELAY_URL      enrol with a relay (https://…) using --code, then keep running
  --code CODE           the one-time enrolment code the relay operator issued
  --graph-base-url URL  WhatsApp Graph API base (default https://graph.facebook.com)
  --log-level LEVEL     pino level (default info)
  --verify-audit        check the audit log's hash chain (and, when paired, the relay's witness),
                        print the verdict as JSON and exit: 0 intact, 3 broken

The database key and the device keys live in the OS keychain (service "clinic-inbox").`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      pair: { type: 'string' },
      code: { type: 'string' },
      'graph-base-url': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'verify-audit': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !values['data-dir']) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const logger = pino({ level: values['log-level'] ?? 'info', base: { part: 'core' } });
  const core = await createCore({
    dataDir: values['data-dir'],
    logger,
    ...(values['graph-base-url'] ? { graph: { baseUrl: values['graph-base-url'] } } : {}),
  });

  const operator: Session = { userId: 'cli', role: 'admin', displayName: 'Command line', origin: 'cli' };
  if (values['verify-audit']) {
    if (core.relayStatus().state !== 'not_paired') {
      // Give the link a moment so the relay's witness can be asked too.
      const deadline = Date.now() + 5_000;
      while (core.relayStatus().state !== 'connected' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    const result = await core.dispatch(operator, 'audit.verify', { withRelayWitness: core.relayStatus().state === 'connected' });
    await core.close();
    process.stdout.write(`${JSON.stringify(result.ok ? result.value : result.error, null, 2)}\n`);
    const verdict = result.ok ? (result.value as { chain: { ok: boolean }; witness: { ok: boolean | null } }) : null;
    process.exit(verdict && verdict.chain.ok && verdict.witness.ok !== false ? 0 : 3);
  }
  if (values.pair) {
    const result = await core.dispatch(operator, 'setup.pair', { relayUrl: values.pair, code: values.code ?? '' });
    if (!result.ok) {
      logger.error({ code: result.error.code }, result.error.message);
      await core.close();
      process.exit(1);
    }
  }
  logger.info({ event: 'ready', pid: process.pid }, 'core ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'core stopping');
    void core.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof CodedError) {
    process.stderr.write(`clinic-inbox core: ${err.code}: ${err.message}\n`);
    process.exit(err.code === 'KEYCHAIN_UNAVAILABLE' ? 78 : 1);
  }
  process.stderr.write(`clinic-inbox core failed to start: ${err instanceof Error ? err.name : 'error'}\n`);
  if (err instanceof Error && err.stack) process.stderr.write(`${err.stack.split('\n').slice(1, 6).join('\n')}\n`);
  process.exit(1);
});
