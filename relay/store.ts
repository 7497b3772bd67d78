/**
 * The relay's only storage: one SQLite file (WAL, `synchronous=FULL`) holding tenants, their phone
 * numbers, enrolled appliances, hashed enrolment codes, the sealed envelope queue, keyed dedup
 * hashes and the latest audit checkpoint per appliance. Nothing readable about patients is ever
 * written here: envelopes are HPKE ciphertext and dedup keys are HMACs under a relay secret.
 *
 * Functions take the database as their first argument (the Signal habit), so the server, the
 * operator CLI and the test helpers share one set of queries.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, randomInt } from 'node:crypto';

export type Db = Database.Database;

const SCHEMA_VERSION = 40;

const MIGRATIONS: Record<number, string> = {
  10: `
    CREATE TABLE tenants (
      id TEXT PRIMARY KEY,
      label TEXT,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE phone_numbers (
      phone_number_id TEXT PRIMARY KEY,
      tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
      added_at INTEGER NOT NULL
    );
    CREATE INDEX phone_numbers_tenant ON phone_numbers(tenant_id);
    CREATE TABLE appliances (
      id TEXT PRIMARY KEY,
      tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
      signing_public_key BLOB NOT NULL,
      encryption_public_key BLOB NOT NULL,
      label TEXT,
      enrolled_at INTEGER NOT NULL,
      revoked_at INTEGER,
      next_seq INTEGER NOT NULL DEFAULT 1,
      last_seen_at INTEGER
    );
    CREATE UNIQUE INDEX appliances_one_active ON appliances(tenant_id) WHERE revoked_at IS NULL;
    CREATE TABLE enrolment_codes (
      code_hash BLOB PRIMARY KEY,
      tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
      issued_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      used_at INTEGER,
      appliance_id TEXT
    );
    CREATE TABLE envelopes (
      appliance_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      tenant_id TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      enc BLOB NOT NULL,
      ct BLOB NOT NULL,
      PRIMARY KEY (appliance_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX envelopes_received ON envelopes(received_at);
    CREATE INDEX envelopes_tenant ON envelopes(tenant_id, received_at);
    CREATE TABLE dedup (
      key_hash BLOB PRIMARY KEY,
      seen_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX dedup_seen ON dedup(seen_at);
    CREATE TABLE checkpoints (
      appliance_id TEXT PRIMARY KEY,
      seq INTEGER NOT NULL,
      head_hash TEXT NOT NULL,
      at INTEGER NOT NULL,
      signature TEXT NOT NULL,
      received_at INTEGER NOT NULL
    );
  `,
  // Why an appliance was revoked (a key found unusable at start, say), and enrolment codes that
  // are voided by a newer one or were issued to replace a named appliance.
  20: `
    ALTER TABLE appliances ADD COLUMN revoked_reason TEXT;
    ALTER TABLE enrolment_codes ADD COLUMN replaces_appliance_id TEXT;
    ALTER TABLE enrolment_codes ADD COLUMN voided_at INTEGER;
  `,
  // Upgrade nonces and connection leases, kept in the store so they hold across restarts (and, on
  // PostgreSQL, across instances); envelope v2 names the epoch whose context sealed an envelope.
  30: `
    CREATE TABLE upgrade_nonces (
      appliance_id TEXT NOT NULL,
      nonce TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (appliance_id, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX upgrade_nonces_expiry ON upgrade_nonces(expires_at);
    CREATE TABLE connection_leases (
      appliance_id TEXT PRIMARY KEY,
      holder TEXT,
      instance TEXT,
      renewed_at INTEGER NOT NULL DEFAULT 0,
      takeovers TEXT NOT NULL DEFAULT '[]',
      conflict_until INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE envelopes ADD COLUMN epoch TEXT;
    ALTER TABLE appliances ADD COLUMN envelope_version INTEGER NOT NULL DEFAULT 1;
  `,
  // A counter every change of the numbers bumps, whichever process or connection makes it (the
  // triggers see operator commands and raw SQL alike): the server remembers routing in memory, and
  // its queue writer refuses a part routed under an older count, inside the commit's write lock.
  40: `
    CREATE TABLE routing_version (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      version INTEGER NOT NULL
    );
    INSERT INTO routing_version (id, version) VALUES (1, 0);
    CREATE TRIGGER phone_numbers_added AFTER INSERT ON phone_numbers BEGIN UPDATE routing_version SET version = version + 1; END;
    CREATE TRIGGER phone_numbers_changed AFTER UPDATE ON phone_numbers BEGIN UPDATE routing_version SET version = version + 1; END;
    CREATE TRIGGER phone_numbers_removed AFTER DELETE ON phone_numbers BEGIN UPDATE routing_version SET version = version + 1; END;
  `,
};

export function openStore(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before the relay answers 200, so Meta never drops what we lost.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Deleted envelopes are ciphertext, but zeroing freed pages keeps old rows from lingering at all.
  db.pragma('secure_delete = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    db.close();
    throw new Error(`relay database is schema ${version}, newer than this relay (${SCHEMA_VERSION}); upgrade the relay`);
  }
  for (const [v, sql] of Object.entries(MIGRATIONS).sort(([a], [b]) => Number(a) - Number(b))) {
    if (Number(v) > version) {
      db.transaction(() => {
        db.exec(sql);
        db.pragma(`user_version = ${Number(v)}`);
      }).immediate();
    }
  }
  return db;
}

const cache = new WeakMap<Db, Map<string, Database.Statement>>();
function stmt(db: Db, sql: string): Database.Statement {
  let m = cache.get(db);
  if (!m) {
    m = new Map();
    cache.set(db, m);
  }
  let s = m.get(sql);
  if (!s) {
    s = db.prepare(sql);
    m.set(sql, s);
  }
  return s;
}

// --- tenants and numbers ---------------------------------------------------------------------

export interface TenantRow {
  id: string;
  label: string | null;
  created_at: number;
}

export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/** Meta's id of a WhatsApp number (digits), not the phone number itself. */
export const PHONE_NUMBER_ID_RE = /^\d{1,32}$/;
export const PHONE_NUMBER_ID_RULE =
  'a phone_number_id is digits only: the id Meta shows for the number under WhatsApp > API Setup, not the phone number itself';

function checkPhoneNumberId(phoneNumberId: string): void {
  // Webhooks route by this id; one that is not numeric can never match and would silently lose messages.
  if (!PHONE_NUMBER_ID_RE.test(phoneNumberId)) throw new StoreInputError(PHONE_NUMBER_ID_RULE);
}

export function createTenant(db: Db, args: { id: string; label?: string | null; phoneNumberIds: string[]; now: number }): TenantRow {
  for (const p of args.phoneNumberIds) checkPhoneNumberId(p);
  db.transaction(() => {
    stmt(db, 'INSERT INTO tenants (id, label, created_at) VALUES (?, ?, ?)').run(args.id, args.label ?? null, args.now);
    for (const p of args.phoneNumberIds) addPhoneNumber(db, args.id, p, args.now);
  }).immediate();
  return { id: args.id, label: args.label ?? null, created_at: args.now };
}

export function getTenant(db: Db, id: string): TenantRow | undefined {
  return stmt(db, 'SELECT id, label, created_at FROM tenants WHERE id = ?').get(id) as TenantRow | undefined;
}

export function addPhoneNumber(db: Db, tenantId: string, phoneNumberId: string, now: number): void {
  checkPhoneNumberId(phoneNumberId);
  const owner = tenantForPhoneNumber(db, phoneNumberId);
  if (owner && owner !== tenantId) throw new StoreConflict(`phone_number_id ${phoneNumberId} already belongs to tenant ${owner}`);
  if (!owner) stmt(db, 'INSERT INTO phone_numbers (phone_number_id, tenant_id, added_at) VALUES (?, ?, ?)').run(phoneNumberId, tenantId, now);
}

export function removePhoneNumber(db: Db, phoneNumberId: string): boolean {
  return stmt(db, 'DELETE FROM phone_numbers WHERE phone_number_id = ?').run(phoneNumberId).changes === 1;
}

export function tenantForPhoneNumber(db: Db, phoneNumberId: string): string | undefined {
  const row = stmt(db, 'SELECT tenant_id FROM phone_numbers WHERE phone_number_id = ?').get(phoneNumberId) as { tenant_id: string } | undefined;
  return row?.tenant_id;
}

/** How many times the numbers changed (`routing_version`, bumped by triggers). */
export function routingVersion(db: Db): number {
  return (stmt(db, 'SELECT version FROM routing_version WHERE id = 1').get() as { version: number }).version;
}

export function phoneNumbersOf(db: Db, tenantId: string): string[] {
  return (stmt(db, 'SELECT phone_number_id FROM phone_numbers WHERE tenant_id = ? ORDER BY phone_number_id').all(tenantId) as { phone_number_id: string }[]).map(
    (r) => r.phone_number_id,
  );
}

export class StoreConflict extends Error {}
/** Input an operator must correct (the message says how); nothing was changed. */
export class StoreInputError extends Error {}
/** The numbers changed after a webhook was routed and before its commit; nothing was written: route it again. */
export class RoutingChanged extends Error {
  constructor() {
    super('phone numbers changed since this webhook was routed');
  }
}

// --- enrolment -------------------------------------------------------------------------------

/** 32 unambiguous characters (no I, O, 0, 1): 5 bits each, 80 bits per code. */
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function hashEnrolmentCode(code: string): Buffer {
  return createHash('sha256').update(`clinic-inbox/enrolment-code/v1\0${code}`).digest();
}

/** A fresh code: 16 characters in groups of four. */
export function newEnrolmentCode(): string {
  const chars = Array.from({ length: 16 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
  return chars.match(/.{4}/g)!.join('-');
}

export function replaceNeeded(tenantId: string, applianceId: string, queuedEnvelopes: number): StoreConflict {
  return new StoreConflict(
    `tenant ${tenantId} has an active appliance (${applianceId}, ${queuedEnvelopes} envelopes waiting); ` +
      'a code for it would replace that appliance and drop its queue. Issue it with --replace to pair a new computer',
  );
}

export interface IssuedCode {
  code: string;
  expiresAt: number;
  /** Older unused codes of this tenant that stopped working now. */
  voidedCodes: number;
  /** The running appliance this code replaces when redeemed, and the envelopes waiting for it. */
  replaces: { applianceId: string; queuedEnvelopes: number } | null;
}

/**
 * Issues the tenant's one valid code: older unused ones are voided, so a leaked code stops
 * working once a newer one exists. Redeeming a code revokes the running appliance and drops its
 * queue, so for a tenant with an active appliance the operator must ask for that (`replace`).
 */
export function issueEnrolmentCode(db: Db, args: { tenantId: string; now: number; ttlMs: number; replace?: boolean }): IssuedCode {
  return db
    .transaction((): IssuedCode => {
      if (!getTenant(db, args.tenantId)) throw new StoreConflict(`no tenant ${args.tenantId}`);
      const active = activeApplianceOf(db, args.tenantId);
      const queuedEnvelopes = active ? backlogOf(db, active.id).queued : 0;
      if (active && !args.replace) throw replaceNeeded(args.tenantId, active.id, queuedEnvelopes);
      const voided = stmt(db, 'UPDATE enrolment_codes SET voided_at = ? WHERE tenant_id = ? AND used_at IS NULL AND voided_at IS NULL').run(
        args.now,
        args.tenantId,
      ).changes;
      const code = newEnrolmentCode();
      const expiresAt = args.now + args.ttlMs;
      stmt(db, 'INSERT INTO enrolment_codes (code_hash, tenant_id, issued_at, expires_at, replaces_appliance_id) VALUES (?, ?, ?, ?, ?)').run(
        hashEnrolmentCode(code),
        args.tenantId,
        args.now,
        expiresAt,
        active?.id ?? null,
      );
      return { code, expiresAt, voidedCodes: voided, replaces: active ? { applianceId: active.id, queuedEnvelopes } : null };
    })
    .immediate();
}

export interface ApplianceRow {
  id: string;
  tenant_id: string;
  signing_public_key: Buffer;
  encryption_public_key: Buffer;
  label: string | null;
  enrolled_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  next_seq: number;
  last_seen_at: number | null;
  /** The newest envelope version the appliance announced when it last connected (1 or 2). */
  envelope_version: number;
}

export interface EnrolResult {
  appliance: ApplianceRow;
  /** The appliance this enrolment replaced (re-pairing), whose queue was dropped. */
  replaced: { applianceId: string; droppedEnvelopes: number } | null;
}

/**
 * Redeems a code (single use, unexpired) and enrols the appliance, all in one transaction.
 * Re-pairing revokes the tenant's previous appliance: envelopes sealed to its key can never be
 * opened by the new one, so they are deleted and counted rather than kept as dead weight.
 */
export function redeemEnrolmentCode(
  db: Db,
  args: { code: string; signingPublicKey: Buffer; encryptionPublicKey: Buffer; label: string | null; now: number },
): EnrolResult | null {
  return db
    .transaction((): EnrolResult | null => {
      const hash = hashEnrolmentCode(args.code);
      const row = stmt(
        db,
        'SELECT tenant_id, replaces_appliance_id FROM enrolment_codes WHERE code_hash = ? AND used_at IS NULL AND voided_at IS NULL AND expires_at > ?',
      ).get(hash, args.now) as { tenant_id: string; replaces_appliance_id: string | null } | undefined;
      if (!row) return null;
      const previous = activeApplianceOf(db, row.tenant_id);
      // Only a code issued to replace exactly this appliance may take its place (codes from before
      // it enrolled, or from an older relay, cannot push it off).
      if (previous && previous.id !== row.replaces_appliance_id) return null;
      let replaced: EnrolResult['replaced'] = null;
      if (previous) {
        const dropped = revokeAppliance(db, previous.id, args.now, 'replaced');
        replaced = { applianceId: previous.id, droppedEnvelopes: dropped };
      }
      const id = newId('a');
      stmt(
        db,
        'INSERT INTO appliances (id, tenant_id, signing_public_key, encryption_public_key, label, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(id, row.tenant_id, args.signingPublicKey, args.encryptionPublicKey, args.label, args.now);
      stmt(db, 'UPDATE enrolment_codes SET used_at = ?, appliance_id = ? WHERE code_hash = ?').run(args.now, id, hash);
      return { appliance: getAppliance(db, id)!, replaced };
    })
    .immediate();
}

export function getAppliance(db: Db, id: string): ApplianceRow | undefined {
  return stmt(db, 'SELECT * FROM appliances WHERE id = ?').get(id) as ApplianceRow | undefined;
}

export function activeApplianceOf(db: Db, tenantId: string): ApplianceRow | undefined {
  return stmt(db, 'SELECT * FROM appliances WHERE tenant_id = ? AND revoked_at IS NULL').get(tenantId) as ApplianceRow | undefined;
}

/** Revokes an appliance and deletes its queue; returns how many envelopes were dropped. */
export function revokeAppliance(db: Db, applianceId: string, now: number, reason = 'operator'): number {
  return db
    .transaction(() => {
      const r = stmt(db, 'UPDATE appliances SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL').run(now, reason, applianceId);
      if (r.changes === 0) return 0;
      return stmt(db, 'DELETE FROM envelopes WHERE appliance_id = ?').run(applianceId).changes;
    })
    .immediate();
}

/** Which of these appliance ids are revoked: one query over revoked rows, not one per connected socket. */
export function revokedAmong(db: Db, applianceIds: Iterable<string>): string[] {
  const revoked = new Set((stmt(db, 'SELECT id FROM appliances WHERE revoked_at IS NOT NULL').all() as { id: string }[]).map((r) => r.id));
  const out: string[] = [];
  for (const id of applianceIds) if (revoked.has(id)) out.push(id);
  return out;
}

export function activeAppliances(db: Db): ApplianceRow[] {
  return stmt(db, 'SELECT * FROM appliances WHERE revoked_at IS NULL').all() as ApplianceRow[];
}

export function touchAppliance(db: Db, applianceId: string, now: number): void {
  stmt(db, 'UPDATE appliances SET last_seen_at = ? WHERE id = ?').run(now, applianceId);
}

// --- the queue -------------------------------------------------------------------------------

export interface EnvelopeRow {
  appliance_id: string;
  seq: number;
  tenant_id: string;
  received_at: number;
  enc: Buffer;
  ct: Buffer;
  /** Envelope v2: the epoch whose HPKE context sealed it (null for v1). */
  epoch?: string | null;
}

export function dedupSeen(db: Db, keyHash: Buffer): boolean {
  return stmt(db, 'SELECT 1 FROM dedup WHERE key_hash = ?').get(keyHash) !== undefined;
}

/** Stores a dedup key unless it is already known; true when it was new. */
export function dedupRemember(db: Db, keyHash: Buffer, now: number): boolean {
  return stmt(db, 'INSERT OR IGNORE INTO dedup (key_hash, seen_at) VALUES (?, ?)').run(keyHash, now).changes > 0;
}

/** The queue writer keeps seqs in memory within a transaction and records the next one here. */
export function setNextSeq(db: Db, applianceId: string, nextSeq: number): void {
  stmt(db, 'UPDATE appliances SET next_seq = ? WHERE id = ?').run(nextSeq, applianceId);
}

export function insertEnvelope(db: Db, row: EnvelopeRow): void {
  stmt(db, 'INSERT INTO envelopes (appliance_id, seq, tenant_id, received_at, enc, ct, epoch) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    row.appliance_id,
    row.seq,
    row.tenant_id,
    row.received_at,
    row.enc,
    row.ct,
    row.epoch ?? null,
  );
}

export function envelopesAfter(db: Db, applianceId: string, afterSeq: number, limit: number): EnvelopeRow[] {
  return stmt(db, 'SELECT * FROM envelopes WHERE appliance_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(applianceId, afterSeq, limit) as EnvelopeRow[];
}

export function deleteEnvelope(db: Db, applianceId: string, seq: number): { received_at: number } | undefined {
  return stmt(db, 'DELETE FROM envelopes WHERE appliance_id = ? AND seq = ? RETURNING received_at').get(applianceId, seq) as
    | { received_at: number }
    | undefined;
}

export function backlogOf(db: Db, applianceId: string): { queued: number; oldestAt: number | null } {
  const row = stmt(db, 'SELECT count(*) AS n, min(received_at) AS oldest FROM envelopes WHERE appliance_id = ?').get(applianceId) as {
    n: number;
    oldest: number | null;
  };
  return { queued: row.n, oldestAt: row.oldest };
}

export function queueByTenant(db: Db): { tenant_id: string; n: number; oldest: number }[] {
  return stmt(db, 'SELECT tenant_id, count(*) AS n, min(received_at) AS oldest FROM envelopes GROUP BY tenant_id').all() as {
    tenant_id: string;
    n: number;
    oldest: number;
  }[];
}

/** Deletes envelopes received before `before`; returns the count per tenant for the metrics. */
export function expireEnvelopes(db: Db, before: number): Map<string, number> {
  return db
    .transaction(() => {
      const rows = stmt(db, 'DELETE FROM envelopes WHERE received_at < ? RETURNING tenant_id').all(before) as { tenant_id: string }[];
      stmt(db, 'DELETE FROM dedup WHERE seen_at < ?').run(before);
      stmt(db, 'DELETE FROM upgrade_nonces WHERE expires_at < ?').run(Date.now());
      const counts = new Map<string, number>();
      for (const r of rows) counts.set(r.tenant_id, (counts.get(r.tenant_id) ?? 0) + 1);
      return counts;
    })
    .immediate();
}

// --- checkpoints -----------------------------------------------------------------------------

export interface CheckpointRow {
  appliance_id: string;
  seq: number;
  head_hash: string;
  at: number;
  signature: string;
  received_at: number;
}

export function latestCheckpoint(db: Db, applianceId: string): CheckpointRow | undefined {
  return stmt(db, 'SELECT * FROM checkpoints WHERE appliance_id = ?').get(applianceId) as CheckpointRow | undefined;
}

export function saveCheckpoint(db: Db, row: CheckpointRow): void {
  stmt(
    db,
    `INSERT INTO checkpoints (appliance_id, seq, head_hash, at, signature, received_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (appliance_id) DO UPDATE SET seq = excluded.seq, head_hash = excluded.head_hash, at = excluded.at,
       signature = excluded.signature, received_at = excluded.received_at`,
  ).run(row.appliance_id, row.seq, row.head_hash, row.at, row.signature, row.received_at);
}

// --- operator listing ------------------------------------------------------------------------

export interface TenantSummary {
  id: string;
  label: string | null;
  createdAt: number;
  phoneNumberIds: string[];
  appliances: {
    id: string;
    label: string | null;
    enrolledAt: number;
    revokedAt: number | null;
    revokedReason: string | null;
    lastSeenAt: number | null;
    queued: number;
  }[];
}

export function listTenants(db: Db): TenantSummary[] {
  const tenants = stmt(db, 'SELECT id, label, created_at FROM tenants ORDER BY id').all() as TenantRow[];
  return tenants.map((t) => ({
    id: t.id,
    label: t.label,
    createdAt: t.created_at,
    phoneNumberIds: phoneNumbersOf(db, t.id),
    appliances: (stmt(db, 'SELECT * FROM appliances WHERE tenant_id = ? ORDER BY enrolled_at').all(t.id) as ApplianceRow[]).map((a) => ({
      id: a.id,
      label: a.label,
      enrolledAt: a.enrolled_at,
      revokedAt: a.revoked_at,
      revokedReason: a.revoked_reason,
      lastSeenAt: a.last_seen_at,
      queued: backlogOf(db, a.id).queued,
    })),
  }));
}

// --- upgrade nonces and connection leases ------------------------------------------------------

/** Records an upgrade nonce; false when this appliance already used it (a replayed upgrade). */
export function useNonce(db: Db, applianceId: string, nonce: string, expiresAt: number): boolean {
  return stmt(db, 'INSERT OR IGNORE INTO upgrade_nonces (appliance_id, nonce, expires_at) VALUES (?, ?, ?)').run(applianceId, nonce, expiresAt).changes === 1;
}

/** What the appliance announced on its last upgrade: envelopes are sealed in that version from now on. */
export function setEnvelopeVersion(db: Db, applianceId: string, version: number): void {
  stmt(db, 'UPDATE appliances SET envelope_version = ? WHERE id = ? AND envelope_version <> ?').run(version, applianceId, version);
}

export function conflictHeldUntil(db: Db, applianceId: string): number {
  const row = stmt(db, 'SELECT conflict_until FROM connection_leases WHERE appliance_id = ?').get(applianceId) as { conflict_until: number } | undefined;
  return row?.conflict_until ?? 0;
}

/** The lease of an appliance's link: who holds it, and the takeovers that may turn into a hold-off. */
export interface LeaseRow {
  holder: string | null;
  instance: string | null;
  renewed_at: number;
  takeovers: number[];
  conflict_until: number;
}

export interface LeasePolicy {
  /** A live link taken over this often within `windowMs` means two computers hold one identity. */
  takeoverLimit: number;
  windowMs: number;
  /** How long both are then held off. */
  holdMs: number;
  /** A lease its instance has not renewed for this long belongs to a dead instance (not a takeover). */
  staleMs: number;
}

export type LeaseClaim =
  /** `previous`: the live connection this one replaces (its instance closes it). */
  | { outcome: 'granted'; previous: { holder: string; instance: string } | null }
  /** Held off (now or already): both ends are refused until `until`. */
  | { outcome: 'conflict'; until: number; previous: { holder: string; instance: string } | null };

/**
 * The rule of "newest connection wins" with the conflict hold-off, as a pure function of the
 * lease row, so both stores decide it the same way.
 */
export function decideLease(row: LeaseRow | undefined, holder: string, instance: string, now: number, policy: LeasePolicy): { next: LeaseRow; claim: LeaseClaim } {
  const base: LeaseRow = row ?? { holder: null, instance: null, renewed_at: 0, takeovers: [], conflict_until: 0 };
  if (base.conflict_until > now) return { next: base, claim: { outcome: 'conflict', until: base.conflict_until, previous: null } };
  const live = base.holder !== null && base.instance !== null && base.renewed_at > now - policy.staleMs;
  const previous = live ? { holder: base.holder!, instance: base.instance! } : null;
  const takeovers = base.takeovers.filter((t) => t > now - policy.windowMs);
  if (previous) takeovers.push(now);
  if (previous && takeovers.length >= policy.takeoverLimit) {
    const until = now + policy.holdMs;
    return { next: { holder: null, instance: null, renewed_at: now, takeovers: [], conflict_until: until }, claim: { outcome: 'conflict', until, previous } };
  }
  return { next: { holder, instance, renewed_at: now, takeovers, conflict_until: 0 }, claim: { outcome: 'granted', previous } };
}

export function claimLease(db: Db, applianceId: string, holder: string, instance: string, now: number, policy: LeasePolicy): LeaseClaim {
  const raw = stmt(db, 'SELECT holder, instance, renewed_at, takeovers, conflict_until FROM connection_leases WHERE appliance_id = ?').get(applianceId) as
    | (Omit<LeaseRow, 'takeovers'> & { takeovers: string })
    | undefined;
  const row = raw && { ...raw, takeovers: JSON.parse(raw.takeovers) as number[] };
  const { next, claim } = decideLease(row, holder, instance, now, policy);
  stmt(
    db,
    `INSERT INTO connection_leases (appliance_id, holder, instance, renewed_at, takeovers, conflict_until) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (appliance_id) DO UPDATE SET holder = excluded.holder, instance = excluded.instance, renewed_at = excluded.renewed_at,
       takeovers = excluded.takeovers, conflict_until = excluded.conflict_until`,
  ).run(applianceId, next.holder, next.instance, next.renewed_at, JSON.stringify(next.takeovers), next.conflict_until);
  return claim;
}

export function releaseLease(db: Db, applianceId: string, holder: string): void {
  stmt(db, 'UPDATE connection_leases SET holder = NULL, instance = NULL WHERE appliance_id = ? AND holder = ?').run(applianceId, holder);
}

/** Keeps this instance's leases live; returns nothing (a lease that moved is simply not renewed). */
export function renewLeases(db: Db, instance: string, now: number): void {
  stmt(db, 'UPDATE connection_leases SET renewed_at = ? WHERE instance = ?').run(now, instance);
}

export function leaseHolders(db: Db, applianceIds: string[]): Map<string, string | null> {
  const out = new Map<string, string | null>();
  const q = stmt(db, 'SELECT holder FROM connection_leases WHERE appliance_id = ?');
  for (const id of applianceIds) out.set(id, ((q.get(id) as { holder: string | null } | undefined)?.holder) ?? null);
  return out;
}
