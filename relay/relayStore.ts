/**
 * The one interface to everything the relay keeps — tenants, numbers, enrolment codes, appliances,
 * the envelope queue with its per-appliance seq, dedup keys, witness checkpoints, upgrade nonces,
 * connection leases and conflict counters — with two implementations chosen by
 * `RELAY_DATABASE_URL`: embedded SQLite (`sqlite:PATH`, the default, one process;
 * `sqliteStore.ts`) and PostgreSQL (`postgres://…`, several instances; `postgresStore.ts`).
 * The same contract tests (`relayStore.test.ts`) run against both.
 */
import type { TenantPart, PartOutcome } from './intake';
import type {
  ApplianceRow,
  CheckpointRow,
  EnrolResult,
  EnvelopeRow,
  IssuedCode,
  LeaseClaim,
  LeasePolicy,
  TenantRow,
  TenantSummary,
} from './store';

export { RoutingChanged } from './store';
export type { ApplianceRow, CheckpointRow, EnrolResult, EnvelopeRow, IssuedCode, LeaseClaim, LeasePolicy, TenantRow, TenantSummary };

export interface Routing {
  tenants: Map<string, string>;
  version: number | null;
}

export interface Backlog {
  queued: number;
  oldestAt: number | null;
}

export interface RelayStore {
  readonly kind: 'sqlite' | 'postgres';
  /** True when other instances may write to the same queue (the hub then runs catch-up queries). */
  readonly shared: boolean;

  // operator
  createTenant(args: { id: string; label?: string | null; phoneNumberIds: string[]; now: number }): Promise<TenantRow>;
  getTenant(id: string): Promise<TenantRow | undefined>;
  addPhoneNumber(tenantId: string, phoneNumberId: string, now: number): Promise<void>;
  removePhoneNumber(phoneNumberId: string): Promise<boolean>;
  phoneNumbersOf(tenantId: string): Promise<string[]>;
  /** phone_number_id → tenant, for the ones routed to a tenant, read from the database now. */
  tenantsForPhoneNumbers(phoneNumberIds: string[]): Promise<Map<string, string>>;
  /**
   * The same for the serving path, from the instance's routing memory where it can: `version` is
   * what `commit` checks (SQLite: the routing version it was read under; null where the store keeps
   * its memory exact by other means, PostgreSQL's `relay_routing` notifications).
   */
  route(phoneNumberIds: string[]): Promise<Routing>;
  issueEnrolmentCode(args: { tenantId: string; now: number; ttlMs: number; replace?: boolean }): Promise<IssuedCode>;
  redeemEnrolmentCode(args: { code: string; signingPublicKey: Buffer; encryptionPublicKey: Buffer; label: string | null; now: number }): Promise<EnrolResult | null>;
  getAppliance(id: string): Promise<ApplianceRow | undefined>;
  activeAppliances(): Promise<ApplianceRow[]>;
  /** Revokes and drops the queue; returns how many envelopes were dropped. */
  revokeAppliance(applianceId: string, now: number, reason?: string): Promise<number>;
  revokedAmong(applianceIds: string[]): Promise<string[]>;
  listTenants(): Promise<TenantSummary[]>;

  // the queue
  /**
   * Seals and durably commits the parts (dedup, seq, insert): resolves only after the commit.
   * With a `routingVersion` that no longer holds when the commit takes the write lock, nothing is
   * written and it rejects with `RoutingChanged`: route the webhook again.
   */
  commit(parts: TenantPart[], receivedAt: number, routingVersion?: number | null): Promise<PartOutcome[]>;
  envelopesAfter(applianceId: string, afterSeq: number, limit: number): Promise<EnvelopeRow[]>;
  /** The highest queued seq of each appliance that has any (the catch-up query). */
  queueHeads(applianceIds: string[]): Promise<Map<string, number>>;
  /** Deletes acknowledged envelopes; resolves with which seqs existed. */
  ack(applianceId: string, seqs: number[]): Promise<boolean[]>;
  backlogOf(applianceId: string): Promise<Backlog>;
  queueByTenant(): Promise<{ tenant_id: string; n: number; oldest: number }[]>;
  /** Envelopes waiting (for one tenant, or all). */
  queued(tenantId?: string): Promise<number>;
  /** Deletes envelopes (and dedup keys, nonces) older than `before`; count per tenant. */
  expire(before: number): Promise<[string, number][]>;
  /** Last seen; best effort. */
  touch(applianceIds: string[], at: number): void;

  // witness checkpoints
  latestCheckpoint(applianceId: string): Promise<CheckpointRow | undefined>;
  saveCheckpoint(row: CheckpointRow): Promise<void>;

  // upgrades and leases
  /**
   * Records the nonce (false if already used) and says until when the identity is held off (0:
   * not); with a fresh nonce, also the envelope version the appliance announced.
   */
  checkUpgrade(
    applianceId: string,
    nonce: string,
    nonceExpiresAt: number,
    now: number,
    envelopeVersion?: number,
  ): Promise<{ fresh: boolean; conflictUntil: number }>;
  claimLease(applianceId: string, holder: string, instance: string, now: number, policy: LeasePolicy): Promise<LeaseClaim>;
  releaseLease(applianceId: string, holder: string): Promise<void>;
  renewLeases(instance: string, now: number): Promise<void>;
  leaseHolders(applianceIds: string[]): Promise<Map<string, string | null>>;

  /** Signals from other instances (PostgreSQL `LISTEN/NOTIFY`; not durable, hence catch-up). */
  onSignal(listener: (signal: StoreSignal) => void): void;

  /** A read and an empty write transaction: resolves when the database takes writes. */
  probe(): Promise<void>;
  /** False once the store cannot work any more (the SQLite writer thread died). */
  healthy(): boolean;
  close(): Promise<void>;
}

export type StoreSignal =
  | { kind: 'envelopes'; applianceId: string }
  | { kind: 'lease'; applianceId: string }
  /** The notification channel was lost and is back: anything may have been missed. */
  | { kind: 'resync' };

export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** `sqlite:PATH` (or a bare path), `postgres://…` / `postgresql://…`. */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (url.startsWith('sqlite:')) return { kind: 'sqlite', path: url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') };
  throw new Error('RELAY_DATABASE_URL: expected sqlite:PATH or postgres://user@host/db');
}

export interface StoreOptions {
  /** What sealing needs (serve only; operator commands never see the relay's secrets). */
  sealing?: { relayPrivateKey: Uint8Array; dedupKey: Uint8Array };
  /** PostgreSQL pool size per instance. */
  poolSize?: number;
  /** A statement or commit taking longer fails (→ 503). */
  statementTimeoutMs?: number;
  onBatch?: (size: number, seconds: number) => void;
  onFatal?: (err: Error) => void;
}

export async function openRelayStore(url: string, opts: StoreOptions = {}): Promise<RelayStore> {
  const target = parseDatabaseUrl(url);
  if (target.kind === 'sqlite') {
    const { openSqliteStore } = await import('./sqliteStore');
    return openSqliteStore(target.path, opts);
  }
  const { openPostgresStore } = await import('./postgresStore');
  return openPostgresStore(target.url, opts);
}

/** Applies pending migrations (SQLite: at open; PostgreSQL: versioned, under an advisory lock). */
export async function migrateRelayStore(url: string): Promise<{ from: number; to: number }> {
  const target = parseDatabaseUrl(url);
  if (target.kind === 'sqlite') {
    const { migrateSqlite } = await import('./sqliteStore');
    return migrateSqlite(target.path);
  }
  const { migratePostgres } = await import('./postgresStore');
  return migratePostgres(target.url);
}
