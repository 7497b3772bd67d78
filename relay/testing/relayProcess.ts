/**
 * The REAL relay as a child process (`node --import tsx relay/main.ts serve`) for tests and the
 * bench: a temp data dir, port 0 (the port is read from the `listening` log line), fresh keys, an
 * app secret and a verify token.
 *
 *   const relay = await RelayProcess.start({ env: { RELAY_HEARTBEAT_MS: '500' } });
 *   await relay.createTenant({ tenantId: 'clinic-a', phoneNumberIds: ['110000000000001'] });
 *   const code = await relay.issueEnrolmentCode('clinic-a');
 *   const res = await relay.postWebhook(body);            // signed with relay.appSecret
 *   await relay.postWebhook(body, { signature: null });   // unsigned; or { secret: 'other' }
 *   await relay.kill('SIGKILL'); await relay.restart();   // same data dir, same port if free
 *   await relay.stop();                                   // SIGTERM, waits, removes the temp dir
 *
 * Fields: `url` (http://127.0.0.1:port), `wsUrl`, `port`, `metricsUrl` (the loopback metrics listener), `dataDir`, `appSecret`, `verifyToken`,
 * `relayPublicKey`, `pid`, `logs()` (everything the relay printed; also in `<dataDir>/relay.log`).
 * Operator commands run in this process against the same database (SQLite WAL allows it), through
 * the same store the CLI uses; `cli(args)` runs the real CLI when a test wants that path.
 *
 * On PostgreSQL (`relay/testing/postgres.ts`), several instances share one database and one set of
 * secrets, as behind a load balancer:
 *
 *   const [a, b, c] = await RelayProcess.cluster(3, { databaseUrl: await pg.createDatabase('relay_x') });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateX25519KeyPair, x25519PrivateRaw } from '../crypto/hpke';
import { migrateRelayStore, openRelayStore, type RelayStore } from '../relayStore';
import { openStore } from '../store';
import { signWebhook } from './signWebhook';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'relay', 'main.ts');

export interface RelayProcessOptions {
  /** Extra RELAY_* variables (strings), e.g. timeouts or limits for a test. */
  env?: Record<string, string>;
  /** Several secrets exercise rotation; the first is the one `postWebhook` signs with. */
  appSecrets?: string[];
  /** Keep the data dir after `stop()` (to inspect it). */
  keepDataDir?: boolean;
  /** `postgres://…` to run on PostgreSQL (migrated before the start); SQLite in the data dir otherwise. */
  databaseUrl?: string;
  /** Another instance whose secrets (relay key, dedup key, app secrets, verify token) this one shares. */
  sameSecretsAs?: RelayProcess;
  /** Run the compiled build (`relay/build.mjs` → dist/relay, as deployed) instead of the TypeScript through tsx. */
  compiled?: boolean;
  /** With `compiled`: run the build in this folder as it is (an older build the bench compares against). */
  buildDir?: string;
  /** Extra node flags before the script (the bench's `--cpu-prof`, say). */
  nodeArgs?: string[];
}

export class RelayProcess {
  readonly dataDir: string;
  readonly appSecret: string;
  readonly verifyToken: string;
  readonly relayPublicKey: string;
  port = 0;
  /** The metrics listener's port (loopback), 0 when the test turned it off. */
  metricsPort = 0;
  private child: ChildProcess | null = null;
  private output = '';
  private readonly env: Record<string, string>;
  readonly databaseUrl: string;

  private constructor(private readonly opts: RelayProcessOptions) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'clinic-relay-'));
    this.databaseUrl = opts.databaseUrl ?? `sqlite:${join(this.dataDir, 'relay.sqlite')}`;
    const shared = opts.sameSecretsAs;
    const kp = generateX25519KeyPair();
    this.relayPublicKey = shared?.relayPublicKey ?? kp.publicRaw.toString('base64url');
    const secrets = opts.appSecrets ?? (shared ? shared.env.RELAY_APP_SECRETS!.split(',') : [randomBytes(16).toString('hex')]);
    this.appSecret = secrets[0]!;
    this.verifyToken = shared?.verifyToken ?? randomBytes(18).toString('base64url');
    this.env = {
      RELAY_DATA_DIR: this.dataDir,
      RELAY_DATABASE_URL: this.databaseUrl,
      RELAY_HOST: '127.0.0.1',
      RELAY_PORT: '0',
      RELAY_X25519_PRIVATE_KEY: shared?.env.RELAY_X25519_PRIVATE_KEY ?? x25519PrivateRaw(kp.privateKey).toString('base64url'),
      RELAY_DEDUP_KEY: shared?.env.RELAY_DEDUP_KEY ?? randomBytes(32).toString('base64url'),
      RELAY_APP_SECRETS: secrets.join(','),
      RELAY_VERIFY_TOKEN: this.verifyToken,
      RELAY_REVOCATION_POLL_MS: '200',
      RELAY_SHUTDOWN_GRACE_MS: '3000',
      // Metrics on a loopback listener of their own (as in production), on a free port.
      RELAY_METRICS_LISTEN: '127.0.0.1:0',
      ...opts.env,
    };
  }

  static async start(opts: RelayProcessOptions = {}): Promise<RelayProcess> {
    const r = new RelayProcess(opts);
    if (r.databaseUrl.startsWith('postgres')) await migrateRelayStore(r.databaseUrl);
    await r.spawn();
    return r;
  }

  /** `n` instances on one database with the same secrets (PostgreSQL), started in parallel. */
  static async cluster(n: number, opts: RelayProcessOptions & { databaseUrl: string }): Promise<RelayProcess[]> {
    const first = await RelayProcess.start(opts);
    const rest = await Promise.all(Array.from({ length: n - 1 }, () => RelayProcess.start({ ...opts, sameSecretsAs: first })));
    return [first, ...rest];
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Where `/metrics` is served without a token: the loopback metrics listener. */
  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}/metrics`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  logs(): string {
    return this.output;
  }

  private spawn(port = 0): Promise<void> {
    if (this.opts.compiled && !this.opts.buildDir) spawnSync(process.execPath, [join(ROOT, 'relay', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
    // As relay/deploy runs it; flags given later win, so `nodeArgs` can override the deployed ones.
    const args = this.opts.compiled
      ? ['--max-semi-space-size=2', ...(this.opts.nodeArgs ?? []), join(this.opts.buildDir ?? join(ROOT, 'dist', 'relay'), 'main.js'), 'serve']
      : [...(this.opts.nodeArgs ?? []), '--import', 'tsx', MAIN, 'serve'];
    // MALLOC_ARENA_MAX as the deployed units set it; `env` can override it, or unset it with ''.
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MALLOC_ARENA_MAX: '2', ...this.env, RELAY_PORT: String(port) };
    if (env.MALLOC_ARENA_MAX === '') delete env.MALLOC_ARENA_MAX;
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const logFile = join(this.dataDir, 'relay.log');
    return new Promise((resolveStart, rejectStart) => {
      let buffered = '';
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        this.output += text;
        appendFileSync(logFile, text);
        buffered += text;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          try {
            const j = JSON.parse(line) as { event?: string; port?: number; metricsPort?: number | null };
            if (j.event === 'listening' && j.port) {
              this.port = j.port;
              this.metricsPort = j.metricsPort ?? 0;
              resolveStart();
            }
          } catch {
            // not a JSON line (a stack trace, say); kept in the log
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => {
        this.output += c.toString();
        appendFileSync(logFile, c);
      });
      child.once('exit', (code, signal) => rejectStart(new Error(`relay exited before listening (${code ?? signal}):\n${this.output}`)));
    });
  }

  /** Sends a signal and waits for the process to end. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child?.exitCode ?? null, signal: child?.signalCode ?? null });
    return new Promise((done) => {
      child.once('exit', (code, sig) => done({ code, signal: sig }));
      child.kill(signal);
    });
  }

  /** Starts the relay again on the same data dir (and the same port when it is free). */
  async restart(): Promise<void> {
    await this.kill('SIGTERM');
    try {
      await this.spawn(this.port);
    } catch {
      await this.spawn(0);
    }
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    if (!this.opts.keepDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async withStore<T>(fn: (store: RelayStore) => Promise<T>): Promise<T> {
    const store = await openRelayStore(this.databaseUrl);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  async createTenant(args: { tenantId: string; phoneNumberIds: string[]; label?: string }): Promise<{ tenantId: string }> {
    await this.withStore((s) => s.createTenant({ id: args.tenantId, label: args.label ?? null, phoneNumberIds: args.phoneNumberIds, now: Date.now() }));
    return { tenantId: args.tenantId };
  }

  /**
   * A fresh code for the tenant (older unused ones stop working). Tests re-pair freely, so by
   * default the code replaces the tenant's active appliance if it has one, as the operator's
   * `enrol-code --replace` does; `{ replace: false }` behaves like the plain command and throws
   * while an appliance is active.
   */
  async issueEnrolmentCode(tenantId: string, ttlMs = 3_600_000, opts: { replace?: boolean } = {}): Promise<string> {
    return this.withStore(async (s) => (await s.issueEnrolmentCode({ tenantId, now: Date.now(), ttlMs, replace: opts.replace ?? true })).code);
  }

  async revoke(applianceId: string): Promise<void> {
    await this.withStore((s) => s.revokeAppliance(applianceId, Date.now()));
  }

  /** Envelopes waiting in the queue (optionally for one tenant): what the relay stored. SQLite only (synchronous). */
  queued(tenantId?: string): number {
    if (!this.databaseUrl.startsWith('sqlite:')) throw new Error('queued() reads the SQLite file; on PostgreSQL use countQueued()');
    const db = openStore(this.databaseUrl.slice('sqlite:'.length));
    try {
      const row = (tenantId
        ? db.prepare('SELECT count(*) AS n FROM envelopes WHERE tenant_id = ?').get(tenantId)
        : db.prepare('SELECT count(*) AS n FROM envelopes').get()) as { n: number };
      return row.n;
    } finally {
      db.close();
    }
  }

  /** The same on either backend, through the store. */
  countQueued(tenantId?: string): Promise<number> {
    return this.withStore((s) => s.queued(tenantId));
  }

  /** Waits until the queue (of one tenant, or all) holds exactly `n` envelopes. */
  async waitForQueued(n: number, tenantId?: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let have = -1;
    while ((have = await this.countQueued(tenantId)) !== n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} queued envelopes${tenantId ? ` of ${tenantId}` : ''} (have ${have})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The value of one Prometheus sample, e.g. `metric('relay_unknown_phone_number_total')`, scraped from the metrics listener. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const token = this.env.RELAY_METRICS_TOKEN;
    const text = await (await fetch(this.metricsUrl, token ? { headers: { authorization: `Bearer ${token}` } } : {})).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = (m[2] ?? '').split(',').filter(Boolean);
      if (want.every((w) => have.includes(w))) return Number(m[3]);
    }
    return 0;
  }

  /** Runs the real operator CLI against this relay's data dir; returns its exit status and output. */
  cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', RELAY_DATA_DIR: this.dataDir, RELAY_DATABASE_URL: this.databaseUrl },
      encoding: 'utf8',
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  async postWebhook(
    body: Buffer | string | object,
    opts: { signature?: string | null; secret?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: string; headers: Headers }> {
    const raw = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
    const signature = opts.signature === undefined ? signWebhook(raw, opts.secret ?? this.appSecret) : opts.signature;
    if (signature !== null) headers['x-hub-signature-256'] = signature;
    const res = await fetch(`${this.url}/webhooks/whatsapp`, { method: 'POST', headers, body: new Uint8Array(raw) });
    return { status: res.status, body: await res.text(), headers: res.headers };
  }
}
