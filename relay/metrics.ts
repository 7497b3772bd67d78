/**
 * Prometheus metrics on a registry of their own (never prom-client's global one, so two relays in
 * one test process do not collide). Labels hold reasons and opaque tenant ids only — never a
 * patient's number, name or text.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type RejectReason =
  | 'bad_signature'
  | 'missing_signature'
  | 'too_large'
  | 'undeliverable'
  | 'bad_json'
  | 'rate_limited'
  | 'busy'
  | 'commit_failed'
  | 'too_deep'
  | 'timeout';

/** Why a signed webhook was answered 503 so that Meta sends it again later. */
export type DeferReason = 'no_appliance' | 'unsealable';

/** What the gauges read at scrape time; each is one cheap query or a value held in memory. */
export interface MetricSources {
  queue: () => Promise<{ tenant_id: string; n: number; oldest: number }[]>;
  /** Every active appliance: its tenant, whether its socket is open here, and when it was last seen. */
  appliances?: () => Promise<{ tenant: string; connected: boolean; lastSeenAt: number }[]>;
  /** The outcome of the last periodic database check. */
  databaseUp?: () => boolean;
  inflightBodyBytes?: () => number;
}

export interface RelayMetrics {
  registry: Registry;
  webhooksAccepted: Counter<'outcome'>;
  webhooksRejected: Counter<'reason'>;
  webhooksDeferred: Counter<'reason'>;
  webhookResponses: Counter<'code'>;
  appliancesDisabled: Counter<'reason'>;
  connectionsDropped: Counter;
  envelopesQueued: Counter<'tenant'>;
  changesDropped: Counter<'reason'>;
  unknownPhoneNumbers: Counter;
  duplicates: Counter<'tenant'>;
  envelopesExpired: Counter<'tenant'>;
  deliveryLatency: Histogram;
  connectedAppliances: Gauge;
  upgradesRefused: Counter<'reason'>;
  applianceConflicts: Counter;
  badFrames: Counter;
  checkpoints: Counter<'outcome'>;
  enrolments: Counter<'outcome'>;
  commitBatchSize: Histogram;
  commitSeconds: Histogram;
}

export function createMetrics(sources: MetricSources, now: () => number): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'relay_process_' });
  new Gauge({
    name: 'relay_inflight_body_bytes',
    help: 'Request body bytes held in memory now (bounded by RELAY_MAX_INFLIGHT_BODY_BYTES)',
    registers: [registry],
    collect() {
      this.set(sources.inflightBodyBytes?.() ?? 0);
    },
  });
  new Gauge({
    name: 'relay_database_up',
    help: 'Whether the last periodic database check (a read and an empty write transaction) succeeded (1) or not (0)',
    registers: [registry],
    collect() {
      this.set(sources.databaseUp?.() === false ? 0 : 1);
    },
  });
  // Each pair of gauges is filled by one query, in the collect of the one registered first: the
  // registry reads a gauge's values right after its own collect, so filling an earlier one from a
  // later collect would show the previous scrape. Reset so a gone tenant does not keep its value.
  const applianceDisconnected = new Gauge({
    name: 'relay_appliance_disconnected_seconds',
    help: "Seconds since the tenant's active appliance was last connected (0 while connected; since enrolment if it never was)",
    labelNames: ['tenant'],
    registers: [],
  });
  new Gauge({
    name: 'relay_appliance_connected',
    help: "Whether the tenant's active appliance has its socket open (1) or not (0)",
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      const rows = (await sources.appliances?.().catch(() => null)) ?? [];
      this.reset();
      applianceDisconnected.reset();
      const t = now();
      for (const a of rows) {
        this.set({ tenant: a.tenant }, a.connected ? 1 : 0);
        applianceDisconnected.set({ tenant: a.tenant }, a.connected ? 0 : Math.max(0, (t - a.lastSeenAt) / 1000));
      }
    },
  });
  registry.registerMetric(applianceDisconnected);
  const queueOldest = new Gauge({ name: 'relay_queue_oldest_age_seconds', help: 'Age of the oldest waiting envelope per tenant', labelNames: ['tenant'], registers: [] });
  new Gauge({
    name: 'relay_queue_depth',
    help: 'Envelopes waiting per tenant',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      // A database that does not answer leaves the gauges empty; relay_database_up says why.
      const rows = (await sources.queue().catch(() => null)) ?? [];
      this.reset();
      queueOldest.reset();
      const t = now();
      for (const row of rows) {
        this.set({ tenant: row.tenant_id }, row.n);
        queueOldest.set({ tenant: row.tenant_id }, Math.max(0, (t - row.oldest) / 1000));
      }
    },
  });
  registry.registerMetric(queueOldest);
  return {
    registry,
    webhooksAccepted: new Counter({
      name: 'relay_webhooks_accepted_total',
      help: 'Signed webhooks answered 200, by outcome (queued, duplicate, unrouted)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhooksRejected: new Counter({ name: 'relay_webhooks_rejected_total', help: 'Webhooks refused, by reason', labelNames: ['reason'], registers: [registry] }),
    webhooksDeferred: new Counter({
      name: 'relay_webhooks_deferred_total',
      help: 'Signed webhooks answered 503 so Meta retries them, by reason (no_appliance: a clinic without an active appliance; unsealable: its key cannot be sealed to)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    webhookResponses: new Counter({
      name: 'relay_webhook_responses_total',
      help: 'Answers to POST /webhooks/whatsapp by HTTP status code (5xx make Meta retry)',
      labelNames: ['code'],
      registers: [registry],
    }),
    appliancesDisabled: new Counter({
      name: 'relay_appliances_disabled_total',
      help: 'Appliances revoked at start because a stored key is unusable (bad_signing_key, bad_encryption_key); the clinic must pair again',
      labelNames: ['reason'],
      registers: [registry],
    }),
    connectionsDropped: new Counter({
      name: 'relay_connections_dropped_total',
      help: 'TCP connections closed on arrival because RELAY_MAX_CONNECTIONS were open',
      registers: [registry],
    }),
    envelopesQueued: new Counter({ name: 'relay_envelopes_queued_total', help: 'Envelopes sealed and committed, per tenant', labelNames: ['tenant'], registers: [registry] }),
    changesDropped: new Counter({
      name: 'relay_changes_dropped_total',
      help: 'Webhook changes not queued, by reason (no_phone_number: account-level updates)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    unknownPhoneNumbers: new Counter({ name: 'relay_unknown_phone_number_total', help: 'Changes for a phone_number_id no tenant owns', registers: [registry] }),
    duplicates: new Counter({ name: 'relay_duplicates_dropped_total', help: 'Tenant parts recognised as already queued', labelNames: ['tenant'], registers: [registry] }),
    envelopesExpired: new Counter({ name: 'relay_envelopes_expired_total', help: 'Envelopes deleted unacknowledged after the TTL', labelNames: ['tenant'], registers: [registry] }),
    deliveryLatency: new Histogram({
      name: 'relay_delivery_latency_seconds',
      help: 'From webhook receipt to appliance ack',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 86400],
      registers: [registry],
    }),
    connectedAppliances: new Gauge({ name: 'relay_connected_appliances', help: 'Authenticated appliance sockets open', registers: [registry] }),
    upgradesRefused: new Counter({ name: 'relay_ws_upgrades_refused_total', help: 'Appliance upgrades refused, by reason', labelNames: ['reason'], registers: [registry] }),
    applianceConflicts: new Counter({
      name: 'relay_appliance_conflicts_total',
      help: 'Appliance identities held off because two connections kept taking the link from each other (a copy of its keys)',
      registers: [registry],
    }),
    badFrames: new Counter({ name: 'relay_ws_bad_frames_total', help: 'Malformed frames (socket closed)', registers: [registry] }),
    checkpoints: new Counter({ name: 'relay_checkpoints_total', help: 'Audit checkpoints by outcome', labelNames: ['outcome'], registers: [registry] }),
    enrolments: new Counter({ name: 'relay_enrolments_total', help: 'Enrolment attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    commitBatchSize: new Histogram({
      name: 'relay_commit_batch_size',
      help: 'Webhooks per group commit',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'relay_commit_seconds',
      help: 'Duration of one queue writer transaction, fsync included',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
