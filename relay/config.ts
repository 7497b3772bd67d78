/**
 * Relay configuration: environment variables, optionally layered over a JSON file
 * (`RELAY_CONFIG_FILE`, keys named like the variables). Every secret can instead come from a file
 * named by `<NAME>_FILE`, which is how systemd `LoadCredential=` and Docker secrets hand them over.
 * Validated with zod; an error names the variable and says what is wrong, never its value.
 */
import { z } from 'zod';
import { MAX_WEBHOOK_BODY_BYTES } from '../shared/wire';

const b64url = (minBytes: number, maxBytes: number) =>
  z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]+$/, 'expected base64url without padding')
    .transform((s) => Buffer.from(s, 'base64url'))
    .refine((b) => b.length >= minBytes && b.length <= maxBytes, {
      message: minBytes === maxBytes ? `expected ${minBytes} bytes` : `expected ${minBytes} to ${maxBytes} bytes`,
    });

const bool = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no'])])
  .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const DatabaseUrlSchema = z
  .string()
  .trim()
  .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'expected sqlite:PATH or postgres://user@host:5432/database');

const ServeEnvSchema = z.object({
  RELAY_DATA_DIR: z.string().min(1).optional(),
  RELAY_DATABASE_URL: DatabaseUrlSchema.optional(),
  RELAY_DATABASE_POOL_SIZE: int(1, 1000).default(10),
  RELAY_DATABASE_TIMEOUT_MS: int(100, 120_000).default(5_000),
  RELAY_CATCHUP_MS: int(50, 600_000).default(1_000),
  RELAY_HOST: z.string().min(1).default('0.0.0.0'),
  RELAY_PORT: int(0, 65535).default(8080),
  RELAY_X25519_PRIVATE_KEY: b64url(32, 32),
  RELAY_DEDUP_KEY: b64url(32, 64),
  RELAY_APP_SECRETS: z
    .string()
    .transform((s) => s.split(/[\s,]+/).filter((x) => x.length > 0))
    .pipe(z.array(z.string().min(16, 'each app secret has at least 16 characters')).min(1, 'at least one app secret')),
  RELAY_VERIFY_TOKEN: z.string().trim().min(16, 'use a verify token of at least 16 characters'),
  RELAY_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(
      MAX_WEBHOOK_BODY_BYTES,
      `at most ${MAX_WEBHOOK_BODY_BYTES} bytes (8 MiB): a larger webhook would become a frame bigger than appliances accept, and block its clinic's queue`,
    )
    .default(5 * 1024 * 1024),
  RELAY_MAX_INFLIGHT_BODY_BYTES: int(1024, 16 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
  RELAY_MAX_CONNECTIONS: int(2, 1_000_000).default(10_000),
  RELAY_HEADERS_TIMEOUT_MS: int(100, 120_000).default(5_000),
  RELAY_REQUEST_TIMEOUT_MS: int(100, 600_000).default(15_000),
  RELAY_ENVELOPE_TTL_DAYS: z.coerce.number().positive().max(365).default(14),
  RELAY_SWEEP_INTERVAL_MS: int(50, 3_600_000).default(60_000),
  RELAY_DELIVERY_WINDOW: int(1, 1000).default(32),
  RELAY_HEARTBEAT_MS: int(100, 600_000).default(30_000),
  RELAY_REVOCATION_POLL_MS: int(50, 60_000).default(1_000),
  RELAY_WS_MAX_PAYLOAD_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  RELAY_UNSIGNED_RATE_PER_MINUTE: int(1, 1_000_000).default(120),
  RELAY_UNSIGNED_BURST: int(1, 1_000_000).default(60),
  RELAY_TRUST_PROXY: bool.default(false),
  RELAY_TLS_CERT_FILE: z.string().min(1).optional(),
  RELAY_TLS_KEY_FILE: z.string().min(1).optional(),
  RELAY_SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  RELAY_METRICS_TOKEN: z.string().trim().min(16, 'use a metrics token of at least 16 characters').optional(),
  RELAY_METRICS_LISTEN: z
    .string()
    .trim()
    .regex(/^(off|(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5})$/, 'expected host:port (e.g. 127.0.0.1:9464, [::1]:9464) or off')
    .default('127.0.0.1:9464'),
  RELAY_DATABASE_CHECK_MS: int(50, 600_000).default(10_000),
  RELAY_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const SECRET_VARIABLES = ['RELAY_DATABASE_URL', 'RELAY_X25519_PRIVATE_KEY', 'RELAY_DEDUP_KEY', 'RELAY_APP_SECRETS', 'RELAY_VERIFY_TOKEN', 'RELAY_METRICS_TOKEN'] as const;

export interface RelayConfig {
  /** Only for the SQLite default (where `relay.sqlite` lives); null on PostgreSQL. */
  dataDir: string | null;
  /** `sqlite:PATH` (default `sqlite:$RELAY_DATA_DIR/relay.sqlite`) or `postgres://…`. */
  databaseUrl: string;
  /** PostgreSQL connections per instance. */
  databasePoolSize: number;
  /** A database statement or commit slower than this fails, and the webhook gets 503. */
  databaseTimeoutMs: number;
  /** How often the instance holding a socket looks for envelopes it was not notified of (PostgreSQL). */
  catchUpMs: number;
  host: string;
  port: number;
  relayPrivateKey: Buffer;
  dedupKey: Buffer;
  appSecrets: string[];
  verifyToken: string;
  bodyLimitBytes: number;
  /** Request bodies (webhook, enrolment) held in memory at once, all connections together; over it → 503. */
  maxInflightBodyBytes: number;
  /** `server.maxConnections`: appliance sockets and HTTP clients together. */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  envelopeTtlMs: number;
  sweepIntervalMs: number;
  deliveryWindow: number;
  heartbeatMs: number;
  revocationPollMs: number;
  wsMaxPayloadBytes: number;
  unsignedRatePerMinute: number;
  unsignedBurst: number;
  trustProxy: boolean;
  tls: { certFile: string; keyFile: string } | null;
  shutdownGraceMs: number;
  logLevel: string;
  /** When set, `GET /metrics` wants `Authorization: Bearer <token>` (on either listener). */
  metricsToken: string | null;
  /**
   * A second listener that serves only `/metrics` (loopback by default, for a local Prometheus or
   * an SSH tunnel); null when off. Without a token the public listener never serves metrics.
   */
  metricsListen: { host: string; port: number } | null;
  /** How often the database check behind `relay_database_up` runs. */
  databaseCheckMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`relay configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Merges the JSON file (if any) under the environment and resolves `<NAME>_FILE` indirections. */
function gather(env: Env, readFile: (path: string) => string, names: readonly string[]): Record<string, unknown> {
  const problems: string[] = [];
  let fromFile: Record<string, unknown> = {};
  if (env.RELAY_CONFIG_FILE) {
    try {
      const parsed: unknown = JSON.parse(readFile(env.RELAY_CONFIG_FILE));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      fromFile = parsed as Record<string, unknown>;
    } catch (err) {
      problems.push(`RELAY_CONFIG_FILE: cannot read a JSON object from it (${(err as Error).message})`);
    }
    for (const k of Object.keys(fromFile)) {
      if (!KNOWN_NAMES().has(k.replace(/_FILE$/, ''))) problems.push(`RELAY_CONFIG_FILE: unknown key ${k}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const direct = env[name] ?? fromFile[name];
    const file = env[`${name}_FILE`] ?? (fromFile[`${name}_FILE`] as string | undefined);
    if (direct !== undefined && file !== undefined) problems.push(`${name}: set either ${name} or ${name}_FILE, not both`);
    else if (file !== undefined) {
      try {
        out[name] = readFile(String(file)).trim();
      } catch (err) {
        problems.push(`${name}_FILE: cannot read ${String(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else if (direct !== undefined && direct !== '') out[name] = direct;
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

function explain(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const name = String(i.path[0] ?? 'config');
    const secret = (SECRET_VARIABLES as readonly string[]).includes(name);
    const what = i.code === 'invalid_type' && i.input === undefined ? 'is required' : i.message;
    return `${name}: ${what}${secret ? ` (or set ${name}_FILE)` : ''}`;
  });
}

export function loadServeConfig(env: Env, readFile: (path: string) => string): RelayConfig {
  const names = Object.keys(ServeEnvSchema.shape);
  const raw = gather(env, readFile, names);
  const parsed = ServeEnvSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(explain(parsed.error));
  const c = parsed.data;
  if (Boolean(c.RELAY_TLS_CERT_FILE) !== Boolean(c.RELAY_TLS_KEY_FILE)) {
    throw new ConfigError(['RELAY_TLS_CERT_FILE and RELAY_TLS_KEY_FILE: set both (TLS by the relay) or neither (behind a proxy)']);
  }
  if (c.RELAY_MAX_INFLIGHT_BODY_BYTES < c.RELAY_BODY_LIMIT_BYTES) {
    throw new ConfigError([
      `RELAY_MAX_INFLIGHT_BODY_BYTES: at least RELAY_BODY_LIMIT_BYTES (${c.RELAY_BODY_LIMIT_BYTES}), or a webhook at the cap could never be read`,
    ]);
  }
  return {
    dataDir: c.RELAY_DATA_DIR ?? null,
    databaseUrl: databaseUrlOf(c.RELAY_DATABASE_URL, c.RELAY_DATA_DIR),
    databasePoolSize: c.RELAY_DATABASE_POOL_SIZE,
    databaseTimeoutMs: c.RELAY_DATABASE_TIMEOUT_MS,
    catchUpMs: c.RELAY_CATCHUP_MS,
    host: c.RELAY_HOST,
    port: c.RELAY_PORT,
    relayPrivateKey: c.RELAY_X25519_PRIVATE_KEY,
    dedupKey: c.RELAY_DEDUP_KEY,
    appSecrets: c.RELAY_APP_SECRETS,
    verifyToken: c.RELAY_VERIFY_TOKEN,
    bodyLimitBytes: c.RELAY_BODY_LIMIT_BYTES,
    maxInflightBodyBytes: c.RELAY_MAX_INFLIGHT_BODY_BYTES,
    maxConnections: c.RELAY_MAX_CONNECTIONS,
    headersTimeoutMs: c.RELAY_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: c.RELAY_REQUEST_TIMEOUT_MS,
    envelopeTtlMs: Math.round(c.RELAY_ENVELOPE_TTL_DAYS * 86_400_000),
    sweepIntervalMs: c.RELAY_SWEEP_INTERVAL_MS,
    deliveryWindow: c.RELAY_DELIVERY_WINDOW,
    heartbeatMs: c.RELAY_HEARTBEAT_MS,
    revocationPollMs: c.RELAY_REVOCATION_POLL_MS,
    wsMaxPayloadBytes: c.RELAY_WS_MAX_PAYLOAD_BYTES,
    unsignedRatePerMinute: c.RELAY_UNSIGNED_RATE_PER_MINUTE,
    unsignedBurst: c.RELAY_UNSIGNED_BURST,
    trustProxy: c.RELAY_TRUST_PROXY,
    tls: c.RELAY_TLS_CERT_FILE && c.RELAY_TLS_KEY_FILE ? { certFile: c.RELAY_TLS_CERT_FILE, keyFile: c.RELAY_TLS_KEY_FILE } : null,
    shutdownGraceMs: c.RELAY_SHUTDOWN_GRACE_MS,
    logLevel: c.RELAY_LOG_LEVEL,
    metricsToken: c.RELAY_METRICS_TOKEN ?? null,
    metricsListen: parseListen(c.RELAY_METRICS_LISTEN),
    databaseCheckMs: c.RELAY_DATABASE_CHECK_MS,
  };
}

function databaseUrlOf(url: string | undefined, dataDir: string | undefined): string {
  if (url) return url;
  if (!dataDir) throw new ConfigError(['RELAY_DATA_DIR: is required (or set RELAY_DATABASE_URL to sqlite:PATH or postgres://…)']);
  return `sqlite:${dataDir.replace(/\/+$/, '')}/relay.sqlite`;
}

function parseListen(value: string): { host: string; port: number } | null {
  if (value === 'off') return null;
  const at = value.lastIndexOf(':');
  const port = Number(value.slice(at + 1));
  if (port > 65535) throw new ConfigError(['RELAY_METRICS_LISTEN: the port is at most 65535']);
  return { host: value.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}

const KNOWN_NAMES = () => new Set([...Object.keys(ServeEnvSchema.shape), ...Object.keys(AdminEnvSchema.shape)]);

const AdminEnvSchema = z.object({
  RELAY_DATA_DIR: z.string().min(1).optional(),
  RELAY_DATABASE_URL: DatabaseUrlSchema.optional(),
  RELAY_ENROLMENT_CODE_TTL_HOURS: z.coerce.number().positive().max(24 * 30).default(24),
});

/** What the operator commands need: the database only, never the relay's secrets. */
export function loadAdminConfig(
  env: Env,
  readFile: (path: string) => string,
): { dataDir: string | null; databaseUrl: string; enrolmentCodeTtlMs: number } {
  const raw = gather(env, readFile, Object.keys(AdminEnvSchema.shape));
  const parsed = AdminEnvSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(explain(parsed.error));
  const c = parsed.data;
  return {
    dataDir: c.RELAY_DATA_DIR ?? null,
    databaseUrl: databaseUrlOf(c.RELAY_DATABASE_URL, c.RELAY_DATA_DIR),
    enrolmentCodeTtlMs: Math.round(c.RELAY_ENROLMENT_CODE_TTL_HOURS * 3_600_000),
  };
}
