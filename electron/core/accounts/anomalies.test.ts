// Alerts an IT admin or auditor should see, raised by what people do through their own signed-in
// connections on a real core: one receptionist opening far more patients than usual within an hour,
// a sign-in in the middle of the night, and failed sign-ins piling up on an account. Each raises one
// alert (not one per further step), an `alert` audit entry and a `security.alert` push.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RpcEventName, SecurityAlert } from '../../../shared/rpc';
import { startAuditClinic, type AuditClinic } from '../testing/auditClinic';
import { adminConnection, rpc, signIn, type Person } from '../testing/users';
import type { Connection } from '../types';
import { appendAudit } from '../audit/auditLog';
import type { AuditRecord } from '../rpc/dispatch';
import { createTestDb } from '../testing/testDb';
import { createAnomalies } from './anomalies';
import { DEFAULT_SECURITY_SETTINGS } from './service';

const ANNA: Person = { username: 'anna', displayName: 'Anna', roles: ['receptionist'] };
const BRAM: Person = { username: 'bram', displayName: 'Bram', roles: ['receptionist'] };
const CARLA: Person = { username: 'carla', displayName: 'Carla', roles: ['receptionist'] };
const OLGA: Person = { username: 'olga', displayName: 'Olga', roles: ['auditor'] };
/** A Wednesday, 00:30 local time on this computer (opening hours are local); the tests move on from there within the day. */
const at = (hh: number, mm = 0) => new Date(2025, 0, 15, hh, mm).getTime();

let c: AuditClinic;
let admin: Connection;
let olga: Connection;
const pushed: SecurityAlert[] = [];

beforeAll(async () => {
  c = await startAuditClinic({ patients: 53, start: at(0, 30) });
  admin = await adminConnection(c.core);
  olga = await signIn(c.core, OLGA, 'desk-audit');
  olga.on((event: RpcEventName, payload: unknown) => {
    if (event === 'security.alert') pushed.push(payload as SecurityAlert);
  });
}, 60_000);
afterAll(async () => c?.stop());

async function alertsOf(kind: SecurityAlert['kind']): Promise<SecurityAlert[]> {
  return (await rpc(olga, 'security.alerts', {})).filter((a) => a.kind === kind);
}
async function alertEntries(method: string) {
  return (await rpc(olga, 'audit.query', { filter: { action: 'alert' } })).items.filter((e) => e.method === method);
}
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('anomaly alerts', () => {
  it('51 patients opened within an hour raise exactly one alert, one audit entry and one push', async () => {
    const anna = await signIn(c.core, ANNA, 'desk-front');
    for (const p of c.patients.slice(0, 50)) {
      await rpc(anna, 'conversations.get', { conversationId: p.conversationId });
      c.clock.advance(30_000);
    }
    // The same patients again are no news.
    await rpc(anna, 'messages.list', { conversationId: c.patients[0]!.conversationId });
    await settle();
    expect(await alertsOf('many_patients')).toEqual([]);

    await rpc(anna, 'conversations.get', { conversationId: c.patients[50]!.conversationId });
    await rpc(anna, 'conversations.get', { conversationId: c.patients[51]!.conversationId });
    await settle();
    const alerts = await alertsOf('many_patients');
    expect(alerts).toEqual([expect.objectContaining({ displayName: 'Anna', origin: 'desk-front', count: 51, acknowledgedAt: null })]);
    expect(pushed.filter((a) => a.kind === 'many_patients')).toEqual([alerts[0]]);
    const entries = await alertEntries('security.alert.many_patients');
    expect(entries).toEqual([expect.objectContaining({ displayName: 'Anna', outcome: 'ok', contacts: [], reason: expect.stringContaining('51 patients') })]);
  });

  it('patients opened more than an hour apart do not add up', async () => {
    const bram = await signIn(c.core, BRAM, 'desk-back');
    for (const p of c.patients.slice(0, 30)) await rpc(bram, 'conversations.get', { conversationId: p.conversationId });
    c.clock.advance(61 * 60_000);
    for (const p of c.patients.slice(30, 53)) await rpc(bram, 'conversations.get', { conversationId: p.conversationId });
    await settle();
    expect((await alertsOf('many_patients')).filter((a) => a.displayName === 'Bram')).toEqual([]);
  });

  it('11 failed sign-ins for one account raise one alert', async () => {
    await signIn(c.core, CARLA, 'desk-front');
    const before = pushed.length;
    for (let i = 0; i < 12; i++) {
      const desk = c.core.connect('desk-side');
      const result = await desk.dispatch('auth.signIn', { username: 'carla', password: 'not the password at all' });
      desk.close();
      expect(result.ok).toBe(false);
      if (i === 9) expect(await alertsOf('failed_sign_ins')).toEqual([]);
      c.clock.advance(2 * 60_000);
    }
    await settle();
    const alerts = await alertsOf('failed_sign_ins');
    expect(alerts).toEqual([expect.objectContaining({ displayName: 'Carla', origin: 'desk-side', count: 11 })]);
    expect(pushed.slice(before).map((a) => a.kind)).toEqual(['failed_sign_ins']);
    expect(await alertEntries('security.alert.failed_sign_ins')).toHaveLength(1);
    await rpc(admin, 'users.unlock', { userId: alerts[0]!.userId });
  });

  it('a sign-in at 03:00 with opening hours 08:00–18:00 raises one alert; one at 10:00 does not', async () => {
    expect(c.clock.now()).toBeLessThan(at(3));
    await rpc(admin, 'security.updateSettings', { openingHours: { days: [0, 1, 2, 3, 4, 5, 6], opens: '08:00', closes: '18:00' } });
    c.clock.set(at(3));
    await signIn(c.core, BRAM, 'desk-back');
    await signIn(c.core, BRAM, 'desk-back');
    await settle();
    const alerts = await alertsOf('outside_hours');
    expect(alerts).toEqual([expect.objectContaining({ displayName: 'Bram', origin: 'desk-back', count: null })]);
    expect(await alertEntries('security.alert.outside_hours')).toEqual([expect.objectContaining({ displayName: 'Bram', reason: expect.stringContaining('08:00–18:00') })]);

    c.clock.set(at(10));
    await signIn(c.core, BRAM, 'desk-back');
    await settle();
    expect(await alertsOf('outside_hours')).toHaveLength(1);
    expect(pushed.filter((a) => a.kind === 'outside_hours')).toHaveLength(1);
  });
});

describe('anomaly alerts after a restart', () => {
  it("counts the patients a user opened in the last hour before the core started, from the log, and no one else's", async () => {
    const t = createTestDb();
    try {
      const now = 10 * 3_600_000;
      const entry = (userId: string, contactId: number, action: AuditRecord['action'], outcome: AuditRecord['outcome']): AuditRecord => ({
        userId,
        displayName: userId,
        role: 'receptionist',
        sessionId: `s-${userId}`,
        action,
        method: 'conversations.get',
        contactIds: [contactId],
        origin: 'desk-front',
        outcome,
      });
      // The core's previous run: Anna opened patients 1–50 within the hour; older reads, other
      // users' reads, her refused reads and her writes do not count toward her hour.
      for (let p = 1; p <= 50; p++) appendAudit(t.db, entry('anna', p, 'read', 'ok'), now - 50 * 60_000 + p * 1000);
      for (let p = 100; p <= 120; p++) appendAudit(t.db, entry('anna', p, 'read', 'ok'), now - 2 * 3_600_000);
      for (let p = 200; p <= 220; p++) appendAudit(t.db, entry('bram', p, 'read', 'ok'), now - 60_000);
      appendAudit(t.db, entry('anna', 300, 'read', 'denied'), now - 60_000);
      appendAudit(t.db, entry('anna', 301, 'send', 'ok'), now - 60_000);

      const raised: AuditRecord[] = [];
      const started = () =>
        createAnomalies({ db: t.db, now: () => now, settings: () => DEFAULT_SECURITY_SETTINGS, audit: (r) => raised.push(r), broadcast: () => undefined, logger: pino({ level: 'silent' }) });
      // A patient she had already opened is no news; a 51st one is.
      const anomalies = started();
      anomalies.afterRead(entry('anna', 7, 'read', 'ok'));
      expect(raised).toEqual([]);
      appendAudit(t.db, entry('anna', 51, 'read', 'ok'), now);
      anomalies.afterRead(entry('anna', 51, 'read', 'ok'));
      expect(raised).toEqual([expect.objectContaining({ userId: 'anna', action: 'alert', reason: expect.stringContaining('51 patients') })]);
      // Bram's 21 patients stay his own.
      started().afterRead(entry('bram', 221, 'read', 'ok'));
      expect(raised).toHaveLength(1);
      // The alert's push goes out on the next turn, once committed: let it, before the database closes.
      await new Promise((r) => setImmediate(r));
    } finally {
      t.cleanup();
    }
  });
});
