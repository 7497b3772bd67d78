// The relay's command line, and the only file that reads the environment or argv.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { z } from 'zod';
import { IdSchema } from '../shared/encoding';
import { ConfigError, loadAdminConfig, loadServeConfig } from './config';
import { generateX25519KeyPair, x25519PrivateRaw } from './crypto/hpke';
import { migrateRelayStore, openRelayStore, type RelayStore } from './relayStore';
import { createRelayServer } from './server';
import { PHONE_NUMBER_ID_RE, PHONE_NUMBER_ID_RULE, StoreConflict, StoreInputError } from './store';

const PhoneNumberIdSchema = z.string().regex(PHONE_NUMBER_ID_RE, PHONE_NUMBER_ID_RULE);
const readText = (path: string) => readFileSync(path, 'utf8');

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function withAdminStore<T>(fn: (store: RelayStore, enrolmentCodeTtlMs: number) => Promise<T>): Promise<T> {
  const cfg = loadAdminConfig(process.env, readText);
  if (cfg.dataDir) mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const store = await openRelayStore(cfg.databaseUrl);
  try {
    return await fn(store, cfg.enrolmentCodeTtlMs);
  } finally {
    await store.close();
  }
}

function arg<T>(schema: z.ZodType<T>, value: string | undefined, name: string): T {
  const r = schema.safeParse(value);
  if (!r.success) fail(`${name}: ${value === undefined ? 'missing' : r.error.issues[0]?.message}`);
  return r.data;
}

async function serve(): Promise<void> {
  const config = loadServeConfig(process.env, readText);
  const logger = pino({ level: config.logLevel, base: { service: 'clinic-relay' } });
  if (config.dataDir) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // SQLite: created (and migrated) here once, before the server's reader and writer connections
  // open it. PostgreSQL: the operator runs `migrate`; a database behind this relay is refused.
  if (config.databaseUrl.startsWith('sqlite:')) await migrateRelayStore(config.databaseUrl);
  let stop: (signal: string, code?: number) => void = () => undefined;
  const server = await createRelayServer({ config, logger, databaseUrl: config.databaseUrl, onFatal: () => stop('queue writer failure', 1) });
  const addr = await server.listen();
  const metricsAddr = server.metricsAddress();
  const listening = { event: 'listening', port: addr.port, host: addr.address, tls: config.tls !== null, metricsPort: metricsAddr?.port ?? null };
  // Supervisors and tests read the bound port from this line, so it is printed at any log level.
  if (logger.isLevelEnabled('info')) logger.info(listening, 'relay listening');
  else process.stdout.write(`${JSON.stringify({ time: Date.now(), service: 'clinic-relay', ...listening, msg: 'relay listening' })}\n`);
  let stopping = false;
  stop = (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight commits');
    // A watchdog: whatever hangs, the process ends (a supervisor restarts it; Meta retries).
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(code === 0 ? 1 : code);
    }, config.shutdownGraceMs + 5_000).unref();
    server
      .close()
      .then(() => {
        logger.info('relay stopped');
        logger.flush();
        process.exit(code);
      })
      .catch((err: unknown) => {
        logger.error({ err: { message: (err as Error).message } }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const USAGE = `Usage:
  npm run relay -- [serve]                      run the server (default)
  npm run relay -- keygen                       print fresh secrets for the operator
  npm run relay -- migrate                      apply pending database migrations (PostgreSQL; SQLite migrates itself)
  npm run relay -- tenant-add <tenantId> [--label <clinic>] [--phone <phone_number_id>]...
  npm run relay -- number-add <tenantId> <phone_number_id>
  npm run relay -- number-remove <phone_number_id>
  npm run relay -- enrol-code <tenantId> [--replace]
                                                print a one-time enrolment code (stored hashed); voids older
                                                unused codes. --replace is needed while the tenant has an active
                                                appliance: redeeming the code revokes it and drops its queue
  npm run relay -- list                         tenants, numbers, appliances, queue counts
  npm run relay -- revoke <applianceId>         revoke; the running server closes its socket
Operator commands print one JSON document on stdout and need only RELAY_DATABASE_URL (or RELAY_DATA_DIR).
Configuration (environment, *_FILE secrets, TLS, deployment): relay/README.md
`;

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { label: { type: 'string' }, phone: { type: 'string', multiple: true }, replace: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  const [command = 'serve', ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const now = Date.now();
  switch (command) {
    case 'serve':
      return serve();
    case 'keygen': {
      const kp = generateX25519KeyPair();
      process.stdout.write(
        [
          '# Fresh relay secrets. Store them as systemd credentials or Docker secrets, not in a config file.',
          `RELAY_X25519_PRIVATE_KEY=${x25519PrivateRaw(kp.privateKey).toString('base64url')}`,
          `# its public key (appliances pin it at enrolment): ${kp.publicRaw.toString('base64url')}`,
          `RELAY_DEDUP_KEY=${randomBytes(32).toString('base64url')}`,
          `RELAY_VERIFY_TOKEN=${randomBytes(24).toString('base64url')}`,
          '# RELAY_APP_SECRETS comes from the Meta app dashboard (App settings > Basic > App secret).',
          '',
        ].join('\n'),
      );
      return;
    }
    case 'migrate': {
      const cfg = loadAdminConfig(process.env, readText);
      if (cfg.dataDir) mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
      const r = await migrateRelayStore(cfg.databaseUrl);
      return out({ migrated: { from: r.from, to: r.to } });
    }
    case 'tenant-add': {
      const id = arg(IdSchema, rest[0], 'tenantId');
      const phones = (values.phone ?? []).map((p) => arg(PhoneNumberIdSchema, p, '--phone'));
      return withAdminStore(async (store) => {
        if (await store.getTenant(id)) fail(`tenant ${id} already exists`);
        await store.createTenant({ id, label: values.label ?? null, phoneNumberIds: phones, now });
        out({ tenantId: id, phoneNumberIds: phones });
      });
    }
    case 'number-add': {
      const id = arg(IdSchema, rest[0], 'tenantId');
      const phone = arg(PhoneNumberIdSchema, rest[1], 'phone_number_id');
      return withAdminStore(async (store) => {
        if (!(await store.getTenant(id))) fail(`no tenant ${id}`);
        await store.addPhoneNumber(id, phone, now);
        out({ tenantId: id, added: phone });
      });
    }
    case 'number-remove': {
      const phone = arg(PhoneNumberIdSchema, rest[0], 'phone_number_id');
      return withAdminStore(async (store) => {
        if (!(await store.removePhoneNumber(phone))) fail(`phone_number_id ${phone} is not routed to any tenant`);
        out({ removed: phone });
      });
    }
    case 'enrol-code': {
      const id = arg(IdSchema, rest[0], 'tenantId');
      return withAdminStore(async (store, enrolmentCodeTtlMs) => {
      const issued = await store.issueEnrolmentCode({ tenantId: id, now, ttlMs: enrolmentCodeTtlMs, replace: values.replace === true });
      out({
        tenantId: id,
        code: issued.code,
        expiresAt: new Date(issued.expiresAt).toISOString(),
        note: 'shown once; only its hash is stored',
        voidedCodes: issued.voidedCodes,
        replaces: issued.replaces && {
          ...issued.replaces,
          note:
            `when this code is redeemed, appliance ${issued.replaces.applianceId} is revoked and its ${issued.replaces.queuedEnvelopes} waiting ` +
            'envelopes are dropped: they are sealed to its key and will not be delivered to the new appliance (Meta does not send them again)',
        },
      });
      });
    }
    case 'list':
      return withAdminStore(async (store) => out(await store.listTenants()));
    case 'revoke': {
      const id = arg(IdSchema, rest[0], 'applianceId');
      return withAdminStore(async (store) => {
        if (!(await store.getAppliance(id))) fail(`no appliance ${id}`);
        const dropped = await store.revokeAppliance(id, now);
        out({ revoked: id, droppedEnvelopes: dropped });
      });
    }
    default:
      fail(`unknown command ${command}; see the top of relay/main.ts or relay/README.md`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StoreConflict || err instanceof StoreInputError) fail(err.message, 2);
  fail(`relay failed: ${(err as Error).message}`, 1);
});
