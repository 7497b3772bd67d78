/**
 * The operator's alerts and dashboard, checked with Debian's `promtool` (package `prometheus`,
 * installed by .ci/run and scripts/setup.mjs): the rules load, their unit tests fire and stay quiet
 * as written, every dashboard query parses, and every metric either names is one a real relay
 * exports. Then the gauges the alerts stand on are driven for real. promtool missing is a failure,
 * not a skip: CI installs it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../store';
import { RelayProcess } from '../testing/relayProcess';
import { textMessageWebhook } from '../testing/signWebhook';
import { TestAppliance } from '../testing/testAppliance';

const DEPLOY = import.meta.dirname;
const ALERTS = join(DEPLOY, 'alerts.yml');
const DASHBOARD = join(DEPLOY, 'grafana-dashboard.json');

function promtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: DEPLOY, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is needed for these tests (Debian package "prometheus": apt-get install -y prometheus): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface Dashboard {
  panels: { title: string; type: string; targets?: { expr: string }[] }[];
  annotations: { list: { expr?: string }[] };
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExprs = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.annotations.list.flatMap((a) => (a.expr ? [a.expr] : [])),
].map((e) => e.replaceAll('$instance', '.*'));

/** Metric names a query uses (relay_* only; `up` is Prometheus's own), histogram suffixes removed. */
const metricNames = (text: string) =>
  new Set([...text.matchAll(/\b(relay_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')).filter((n) => !n.endsWith('_')));

describe('alert rules and dashboard (promtool)', () => {
  it('loads the alert rules', () => {
    const r = promtool(['check', 'rules', ALERTS]);
    expect(r.output).toContain('SUCCESS: 7 rules found');
    expect(r.status).toBe(0);
  });

  it('passes the rules unit tests: each alert fires on its series and stays quiet on the others', () => {
    const r = promtool(['test', 'rules', join(DEPLOY, 'alerts.test.yml')]);
    expect(r.output).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('has a dashboard whose every query parses', () => {
    expect(dashboardExprs.length).toBeGreaterThan(20);
    // promtool has no bare query checker; recording rules are parsed the same way.
    const dir = mkdtempSync(join(tmpdir(), 'relay-dashboard-'));
    try {
      const rules = ['groups:', '  - name: dashboard', '    rules:', ...dashboardExprs.flatMap((e, i) => [`      - record: dashboard:q${i}`, `        expr: ${JSON.stringify(e)}`])];
      writeFileSync(join(dir, 'dashboard-rules.yml'), `${rules.join('\n')}\n`);
      const r = promtool(['check', 'rules', join(dir, 'dashboard-rules.yml')]);
      expect(r.output).toContain(`SUCCESS: ${dashboardExprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the metrics the alerts and the dashboard stand on', () => {
  let relay: RelayProcess;
  const PHONE = '630000000000001';
  beforeAll(async () => {
    relay = await RelayProcess.start({ env: { RELAY_DATABASE_CHECK_MS: '200' } });
  });
  afterAll(async () => {
    await relay?.stop();
  });

  it('exports every metric that alerts.yml and the dashboard name', async () => {
    const exposition = await (await fetch(relay.metricsUrl)).text();
    const exported = new Set([...exposition.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
    const named = new Set([...metricNames(readFileSync(ALERTS, 'utf8')), ...metricNames(dashboardExprs.join('\n'))]);
    expect(named.size).toBeGreaterThan(15);
    expect([...named].filter((n) => !exported.has(n))).toEqual([]);
  });

  it('shows an appliance offline with its queue, its answers by status, and the database check failing while the database is locked', async () => {
    await relay.createTenant({ tenantId: 'clinic-gauges', phoneNumberIds: [PHONE] });
    const appliance = TestAppliance.create();
    await appliance.enrol(relay.url, await relay.issueEnrolmentCode('clinic-gauges'));
    expect(await relay.metric('relay_appliance_connected', { tenant: 'clinic-gauges' })).toBe(0);
    await appliance.connect(relay.wsUrl, { autoAck: false });
    expect(await relay.metric('relay_appliance_connected', { tenant: 'clinic-gauges' })).toBe(1);
    expect(await relay.metric('relay_appliance_disconnected_seconds', { tenant: 'clinic-gauges' })).toBe(0);
    expect((await relay.postWebhook(textMessageWebhook({ phoneNumberId: PHONE, wamid: 'wamid.gauge', text: 'x' }))).status).toBe(200);
    await appliance.waitForDeliveries(1);
    appliance.close();
    await appliance.closed;
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await relay.metric('relay_appliance_connected', { tenant: 'clinic-gauges' })).toBe(0);
    expect(await relay.metric('relay_appliance_disconnected_seconds', { tenant: 'clinic-gauges' })).toBeGreaterThanOrEqual(1);
    expect(await relay.metric('relay_queue_depth', { tenant: 'clinic-gauges' })).toBe(1);
    expect(await relay.metric('relay_webhook_responses_total', { code: '200' })).toBe(1);

    expect(await relay.metric('relay_database_up')).toBe(1);
    const locker = openStore(join(relay.dataDir, 'relay.sqlite'));
    try {
      locker.exec('BEGIN IMMEDIATE');
      const deadline = Date.now() + 5_000;
      while ((await relay.metric('relay_database_up')) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await relay.metric('relay_database_up')).toBe(0);
      expect((await fetch(`${relay.url}/readyz`)).status).toBe(503);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    const deadline = Date.now() + 10_000;
    while ((await relay.metric('relay_database_up')) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await relay.metric('relay_database_up')).toBe(1);
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
    expect(relay.logs()).toContain('database check failed');
  });
});
