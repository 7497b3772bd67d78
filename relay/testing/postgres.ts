/**
 * A REAL PostgreSQL 15 for tests and the bench, from Debian's packages: `initdb` into a temporary
 * folder and `pg_ctl start` on a free loopback port, as the `postgres` user when we are root
 * (PostgreSQL refuses to run as root). Never a mock.
 *
 *   const pg = await TestPostgres.start();
 *   pg.url                                  // postgres://postgres@127.0.0.1:PORT/postgres
 *   await pg.createDatabase('relay_a')      // → its URL; one database per test keeps them apart
 *   await pg.stop({ mode: 'immediate' });   // a crash (pg_ctl stop -m immediate): no clean shutdown
 *   await pg.start();                       // the same cluster again, same port
 *   await pg.destroy();                     // stop and remove the folder
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const BIN = process.env.RELAY_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class TestPostgres {
  private running = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly asPostgres: boolean,
  ) {}

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** The superuser's URL of the default database. */
  get url(): string {
    return this.urlOf('postgres');
  }

  urlOf(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async start(): Promise<TestPostgres> {
    if (!existsSync(join(BIN, 'initdb'))) {
      throw new Error(`PostgreSQL 15 not found under ${BIN}: install Debian's postgresql package (scripts/setup.mjs test does)`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'clinic-pg-'));
    const asPostgres = process.getuid?.() === 0;
    if (asPostgres) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    const p = new TestPostgres(dir, await freePort(), asPostgres);
    await p.exec('initdb', ['-D', p.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8']);
    // Durable as in production (fsync, synchronous_commit on); sockets in the temp folder only.
    writeFileSync(
      join(dir, 'extra.conf'),
      [
        `port = ${p.port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        'synchronous_commit = on',
        'fsync = on',
        'max_connections = 200',
        'shared_buffers = 32MB',
        "log_min_messages = 'warning'",
        '',
      ].join('\n'),
    );
    if (asPostgres) await run('chown', ['postgres:postgres', join(dir, 'extra.conf')]);
    await p.exec('sh', ['-c', `echo "include '${join(dir, 'extra.conf')}'" >> ${join(p.dataDir, 'postgresql.conf')}`]);
    await p.start();
    return p;
  }

  private async exec(cmd: string, args: string[]): Promise<string> {
    const file = cmd === 'sh' ? 'sh' : join(BIN, cmd);
    const [f, a] = this.asPostgres ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      const { stdout } = await run(f, a, { cwd: this.dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8' } });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${cmd} failed: ${e.stderr || e.message}`);
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.exec('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
    this.running = true;
  }

  /** `fast` is a clean shutdown; `immediate` is a crash (recovery runs at the next start). */
  async stop(opts: { mode?: 'fast' | 'immediate' } = {}): Promise<void> {
    if (!this.running) return;
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', opts.mode ?? 'fast', '-w', '-t', '60', 'stop']);
    this.running = false;
  }

  async destroy(): Promise<void> {
    try {
      await this.stop({ mode: 'immediate' });
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.urlOf(database) });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** A fresh empty database; returns its URL. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${name}: lower-case letters, digits and _ only`);
    await this.query(`CREATE DATABASE ${name}`);
    return this.urlOf(name);
  }
}
