// The headless appliance core: `npm run core -- --data-dir DIR [options]`.
// The Electron shell starts the same `createCore` in a utility process; this entry lets a clinic
// server, the tests and the demo run it without Electron. The only file here that reads argv/env.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { CodedError } from '../../shared/errors';
import { restoreFromFile } from './backup/restore';
import { createCore } from './createCore';
import { DATABASE_FILE } from './db/coreStore';
import { restoreFromRecoveryKey } from './keys/recovery';
import { createCoreLogger } from './settings/logFile';
import { createKeytarSecretStore } from './keys/secretStore';

const USAGE = `Usage: npm run core -- --data-dir DIR [--pair RELAY_URL --code CODE] [--graph-base-url URL] [--log-level LEVEL]
       npm run core -- --data-dir DIR --verify-audit

  --data-dir DIR        where the encrypted database lives (created if missing)
  --pair RELAY_URL      enrol with a relay (https://…) using --code, then keep running
  --code CODE           the one-time enrolment code the relay operator issued
  --graph-base-url URL  WhatsApp Graph API base (default https://graph.facebook.com)
  --log-level LEVEL     pino level (default info)
  --verify-audit        check the audit log's hash chain (and, when paired, the relay's witness),
                        print the verdict as JSON and exit: 0 intact, 3 broken

       npm run core -- --data-dir DIR --create-recovery-key [--replace]
       npm run core -- --data-dir DIR --recover

  --create-recovery-key print a new IT-admin recovery key once and exit (--replace: the old one
                        stops working)
  --recover             new hardware: read the recovery key from the terminal (or stdin), put the
                        database and device keys back into this computer's keychain and exit

       npm run core -- --data-dir DIR admin-reset --user NAME

  admin-reset           the IT admin is locked out: read the recovery key (terminal or stdin, never
                        argv), give user NAME a one-time password and lift any lockout (audited)

       npm run core -- --data-dir DIR backup --to FOLDER
       npm run core -- --data-dir DIR backups --in FOLDER
       npm run core -- --data-dir DIR restore --from FILE

  backup                write one encrypted, verified backup file into FOLDER and exit
  backups               list the backups in FOLDER, verify each fully, exit 0 when all verify
  restore               new hardware (empty data folder and keychain): read the recovery key from
                        the terminal or stdin (never argv), restore FILE into DIR and exit

The database key and the device keys live in the OS keychain (service "clinic-inbox").`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      pair: { type: 'string' },
      code: { type: 'string' },
      'graph-base-url': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'verify-audit': { type: 'boolean' },
      'create-recovery-key': { type: 'boolean' },
      replace: { type: 'boolean' },
      recover: { type: 'boolean' },
      user: { type: 'string' },
      to: { type: 'string' },
      in: { type: 'string' },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !values['data-dir']) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const dataDir = values['data-dir'];
  // stdout and size-capped rotating files in the data folder (what "Export diagnostics" includes).
  const logger = createCoreLogger({ dataDir, level: values['log-level'] ?? 'info' });
  if (values.recover) {
    const { installationId, restored } = await restoreFromRecoveryKey({
      dataDir,
      databasePath: join(dataDir, DATABASE_FILE),
      secrets: await createKeytarSecretStore(),
      recoveryKey: await readRecoveryKeyInput(),
    });
    process.stdout.write(
      restored
        ? `The keys of installation ${installationId} are back in this computer's keychain.\n` +
            'Start Clinic Inbox: it reconnects to the relay as before and receives what waited there. Enter the WhatsApp token again.\n'
        : `This computer's keychain already holds a key that opens installation ${installationId}; nothing was changed.\n`,
    );
    return;
  }
  if (positionals[0] === 'restore') {
    if (!values.from) {
      process.stderr.write('restore needs --from FILE\n');
      process.exit(2);
    }
    process.stderr.write('Give the IT-admin recovery key to restore this backup.\n');
    const result = await restoreFromFile({ dataDir, path: values.from, recoveryKey: await readRecoveryKeyInput(), secrets: await createKeytarSecretStore() });
    process.stdout.write(
      `Restored installation ${result.installationId} from the backup of ${new Date(result.createdAt).toISOString()}; ` +
        `${result.erasuresReapplied} erasure(s) made after it were applied again. Start Clinic Inbox and enter the WhatsApp token again.\n`,
    );
    return;
  }
  const core = await createCore({
    dataDir,
    logger,
    ...(values['graph-base-url'] ? { graph: { baseUrl: values['graph-base-url'] } } : {}),
  });

  // The console acts as a named local operator (the OS account), only for IT-admin commands.
  const operatorName = userInfo().username;
  const operator = core.console(operatorName);
  if (positionals[0] === 'admin-reset') {
    const username = values.user;
    if (!username) {
      process.stderr.write('admin-reset needs --user NAME\n');
      process.exit(2);
    }
    process.stderr.write(`Give the IT-admin recovery key to set a one-time password for ${username}.\n`);
    try {
      const { oneTimePassword } = await core.adminReset(operatorName, username, await readRecoveryKeyInput());
      process.stdout.write(`One-time password for ${username} (they choose their own at the next sign-in):\n\n    ${oneTimePassword}\n\n`);
    } finally {
      await core.close();
    }
    return;
  }
  if (positionals[0] === 'backup' || positionals[0] === 'backups') {
    try {
      if (positionals[0] === 'backup') {
        if (!values.to) throw new CodedError('BAD_REQUEST', 'backup needs --to FOLDER');
        const entry = await core.backups.runNow('console', values.to);
        core.appendAudit({ userId: 'console', displayName: `Console operator ${operatorName}`, role: 'admin', sessionId: null, origin: 'cli', method: 'cli.backup', contactIds: [], action: 'export', outcome: 'ok' });
        process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
      } else {
        if (!values.in) throw new CodedError('BAD_REQUEST', 'backups needs --in FOLDER');
        let allOk = true;
        for (const entry of core.backups.list(values.in)) {
          const check = await core.backups.verify(entry.file);
          allOk &&= check.ok;
          process.stdout.write(`${JSON.stringify({ ...entry, verified: check.ok, problem: check.problem })}\n`);
        }
        process.exitCode = allOk ? 0 : 3;
      }
    } finally {
      await core.close();
    }
    return;
  }
  if (values['verify-audit']) {
    if (core.relayStatus().state !== 'not_paired') {
      // Give the link a moment so the relay's witness can be asked too.
      const deadline = Date.now() + 5_000;
      while (core.relayStatus().state !== 'connected' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    const result = await operator('audit.verify', { withRelayWitness: core.relayStatus().state === 'connected' });
    await core.close();
    process.stdout.write(`${JSON.stringify(result.ok ? result.value : result.error, null, 2)}\n`);
    const verdict = result.ok ? (result.value as { chain: { ok: boolean }; witness: { ok: boolean | null } }) : null;
    process.exit(verdict && verdict.chain.ok && verdict.witness.ok !== false ? 0 : 3);
  }
  if (values['create-recovery-key']) {
    const result = await operator('recovery.create', { replace: values.replace ?? false });
    await core.close();
    if (!result.ok) {
      process.stderr.write(`clinic-inbox core: ${result.error.code}: ${result.error.message}\n`);
      process.exit(1);
    }
    const { recoveryKey } = result.value as { recoveryKey: string };
    process.stdout.write(
      `Recovery key (shown once; print it or write it down and keep it locked away from this computer):\n\n    ${recoveryKey}\n\n` +
        'With it and a copy of the data folder, an IT admin can open the data on new hardware (--recover).\n',
    );
    return;
  }
  if (values.pair) {
    const result = await operator('setup.pair', { relayUrl: values.pair, code: values.code ?? '' });
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

/** From the terminal when there is one (never from argv: that shows in `ps` and shell history). */
async function readRecoveryKeyInput(): Promise<string> {
  if (process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await rl.question('Recovery key: ');
    } finally {
      rl.close();
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
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
