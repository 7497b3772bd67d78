// `npm run demo`: the whole product on this machine — a relay, a core, the Graph API simulator and
// the web harness — paired and configured, with a few realistic conversations, and patients who
// keep writing (on a timer, and whenever you press Enter). Open the printed URL in a browser.
// Data lives in a temp dir and is removed on Ctrl+C. The core needs an OS keychain; on a headless
// machine run it as `dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null; npm run demo'`.
// It makes three throw-away accounts (receptionist, admin, auditor), prints their passwords and
// opens on the sign-in screen.
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { deflateSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Role, RpcMethod, RpcOutput } from '../shared/rpc';
import type { Connection } from '../electron/core/types';
import { buildRenderer, startStack, WABA_ID, type Stack } from '../tests/ui/stack';
const HOUR = 3_600_000;

interface Patient {
  waId: string;
  name: string;
  lines: string[];
  /** What they write later, on the timer or on Enter, in their own language. */
  more: string[];
}

const PATIENTS: Patient[] = [
  { waId: '31612345678', name: 'Anna de Vries', lines: ['Goedemorgen, kan ik mijn afspraak van donderdag verzetten?', 'Vrijdagochtend zou ook goed zijn.'], more: ['Dank u wel!', 'Ik ben iets later, ongeveer 10 minuten.'] },
  { waId: '4915112345678', name: 'Klaus Becker', lines: ['Guten Tag, ich brauche ein neues Rezept für meine Blutdrucktabletten.', 'Kann ich es morgen abholen?'], more: ['Vielen Dank.', 'Muss ich nüchtern zum Bluttest kommen?'] },
  { waId: '447700900123', name: 'Emma Clarke', lines: ['Hi, is the clinic open on Saturday morning?', 'My daughter has a fever since yesterday.'], more: ['Thanks, we will come at 9.', 'Her temperature is down a bit now.'] },
  { waId: '31687654321', name: 'Pieter Jansen', lines: ['Bedankt voor de uitslag van het bloedonderzoek.', 'Moet ik nog een vervolgafspraak maken?'], more: ['Goedemiddag, is de uitslag al binnen?'] },
  { waId: '4917612345678', name: 'Sabine Müller', lines: ['Hallo, ich habe meinen Termin verpasst, das tut mir leid.', 'Geht nächste Woche Dienstag?'], more: ['Guten Morgen, kann ich heute noch vorbeikommen?'] },
  { waId: '447911123456', name: 'James Patel', lines: ['Could you send me the invoice for last visit?', 'Is it possible to pay by bank transfer?'], more: ['Thank you for the reminder!', 'Hello, quick question about my prescription.'] },
];


async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'interval-s': { type: 'string', default: '45' }, port: { type: 'string', default: '0' } } });
  const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'warn' });
  const work = mkdtempSync(join(tmpdir(), 'clinic-demo-'));
  process.stdout.write('Building the renderer…\n');
  const rendererDir = await buildRenderer(join(work, 'renderer'));
  process.stdout.write('Starting relay, Graph API simulator, core and harness…\n');
  const stack = await startStack({ rendererDir, logger, autoStatuses: true });

  // The demo's own actions go through connections of its own, signed in as the people below.
  const people = await createPeople(stack);
  const admin = people.admin.connection;
  await call(admin, 'setup.pair', { relayUrl: stack.relay.url, code: await stack.enrolmentCode() });
  await call(admin, 'setup.whatsapp', { wabaId: WABA_ID, accessToken: stack.accessToken, graphBaseUrl: stack.sim.url });
  // The wizard's last step, done here so the demo opens on sign-in.
  const { recoveryKey, createdAt } = await call(admin, 'recovery.create', {});
  await call(admin, 'recovery.confirm', { createdAt });
  await call(admin, 'templates.sync', {}).catch(() => undefined);
  await seed(stack, people.receptionist.connection);

  let next = 0;
  const writeIn = async (): Promise<void> => {
    const patient = PATIENTS[next % PATIENTS.length]!;
    const text = patient.more[Math.floor(next / PATIENTS.length) % patient.more.length]!;
    next += 1;
    await stack.sim.postInbound({ from: patient.waId, name: patient.name, text });
    // Counts only, even for made-up patients: the habit is what matters.
    process.stdout.write(`  ↳ simulated patient message #${next} posted through the relay\n`);
  };
  const intervalMs = Math.max(5, Number(values['interval-s'])) * 1000;
  const timer = setInterval(() => void writeIn().catch(() => undefined), intervalMs);

  process.stdout.write(
    `\nClinic Inbox demo is running.\n\n  Open: ${stack.url}\n\n` +
      `  Relay:     ${stack.relay.url}\n  Graph API: ${stack.sim.url} (simulator)\n` +
      `  Recovery key of this throw-away installation: ${recoveryKey}\n\n` +
      `  Sign in as (throw-away accounts, passwords made for this run):\n` +
      Object.values(people)
        .map((p) => `    ${p.role.padEnd(13)} ${p.username.padEnd(8)} ${p.password}\n`)
        .join('') +
      `\n` +
      `A patient writes every ${intervalMs / 1000} s. Press Enter for one more now; Ctrl+C to stop.\n`,
  );

  const rl = createInterface({ input: process.stdin });
  rl.on('line', () => void writeIn().catch(() => undefined));

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping…\n');
    clearInterval(timer);
    rl.close();
    await stack.close();
    rmSync(work, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function call<M extends RpcMethod>(connection: Connection, method: M, params: unknown): Promise<RpcOutput<M>> {
  const result = await connection.dispatch(method, params);
  if (!result.ok) throw new Error(`${method}: ${result.error.code}: ${result.error.message}`);
  return result.value as RpcOutput<M>;
}

const WORDS = ['amber', 'harbor', 'lantern', 'meadow', 'orchid', 'pebble', 'quartz', 'saffron', 'tundra', 'velvet', 'willow', 'zephyr', 'cobalt', 'juniper', 'marble', 'nectar'];
/** Four random words and a number: passes the policy, easy to type from the terminal. */
function passphrase(): string {
  return [...Array.from({ length: 4 }, () => WORDS[randomInt(WORDS.length)]!), String(randomInt(10, 100))].join(' ');
}

interface DemoPerson {
  role: Role;
  username: string;
  password: string;
  connection: Connection;
}

/**
 * The first admin (as the wizard's first step makes it), then a receptionist and an auditor made
 * by that admin with a one-time password and signed in once to set their own, as people would.
 * Real password hashing: the demo is the product.
 */
async function createPeople(stack: Stack): Promise<Record<'receptionist' | 'admin' | 'auditor', DemoPerson>> {
  const adminPassword = passphrase();
  const admin = stack.core.connect('demo');
  await call(admin, 'auth.createFirstAdmin', { username: 'admin', displayName: 'Ingrid (IT)', password: adminPassword });
  const make = async (role: Role, username: string, displayName: string): Promise<DemoPerson> => {
    const oneTime = passphrase();
    const password = passphrase();
    await call(admin, 'users.create', { username, displayName, roles: [role], password: oneTime });
    const connection = stack.core.connect('demo');
    await call(connection, 'auth.signIn', { username, password: oneTime });
    await call(connection, 'auth.changePassword', { newPassword: password });
    return { role, username, password, connection };
  };
  return {
    receptionist: await make('receptionist', 'sanne', 'Sanne Visser'),
    admin: { role: 'admin', username: 'admin', password: adminPassword, connection: admin },
    auditor: await make('auditor', 'auditor', 'Ada de Wit'),
  };
}

/** Conversations from the last few days: some answered and read, one with a photo, one past its 24-hour window, one without a phone number. */
async function seed(stack: Stack, desk: Connection): Promise<void> {
  const now = Date.now();
  const [anna, klaus, emma, pieter, sabine, james] = PATIENTS as [Patient, Patient, Patient, Patient, Patient, Patient];
  await stack.sim.postInbound({ from: pieter.waId, name: pieter.name, text: pieter.lines[0]!, at: now - 50 * HOUR });
  await stack.sim.postInbound({ from: pieter.waId, name: pieter.name, text: pieter.lines[1]!, at: now - 49 * HOUR });
  await stack.sim.postInbound({ from: sabine.waId, name: sabine.name, text: sabine.lines[0]!, at: now - 20 * HOUR });
  await stack.sim.postInbound({ from: sabine.waId, name: sabine.name, text: sabine.lines[1]!, at: now - 19 * HOUR });
  const first = await stack.sim.postInbound({ from: anna.waId, name: anna.name, text: anna.lines[0]!, at: now - 3 * HOUR });
  await replyTo(desk, anna, 'Goedemorgen Anna, dat kan. Past vrijdag om 10:30?');
  await stack.sim.postInbound({ from: anna.waId, name: anna.name, text: anna.lines[1]!, at: now - 2 * HOUR, replyToWamid: first.wamid });
  const photo = stack.sim.addMedia({ bytes: demoImage(), mimeType: 'image/png' });
  await stack.sim.postInbound({ from: emma.waId, name: emma.name, text: emma.lines[0]!, at: now - 90 * 60_000 });
  await stack.sim.postInbound({ from: emma.waId, name: emma.name, media: { kind: 'image', mediaId: photo, caption: 'The rash on her arm' }, at: now - 85 * 60_000 });
  await stack.sim.postInbound({ from: james.waId, name: james.name, text: james.lines[0]!, at: now - 40 * 60_000 });
  // Since 2026 a patient may hide their number behind a username: known only by a business-scoped user id.
  await stack.sim.postInbound({ userId: 'NL.5512345678901234', username: 'fleur.d', name: 'Fleur Dekker', text: 'Hoi, is mijn herhaalrecept al klaar?', at: now - 30 * 60_000 });
  await stack.sim.postInbound({ from: klaus.waId, name: klaus.name, text: klaus.lines[0]!, at: now - 10 * 60_000 });
  await stack.sim.postInbound({ from: klaus.waId, name: klaus.name, text: klaus.lines[1]!, at: now - 9 * 60_000 });
}

/** Replies as the desk, once the patient's webhook has travelled relay → core. */
async function replyTo(desk: Connection, patient: Patient, text: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const list = await call(desk, 'inbox.listConversations', { filter: 'all', limit: 50 });
    const conv = list.items.find((c) => c.contact.waId === patient.waId);
    if (conv) {
      await call(desk, 'messages.send', { conversationId: conv.id, text });
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the seeded conversation did not arrive at the core');
}

/** A small generated picture (a soft gradient), so the demo needs no asset files. */
function demoImage(): Buffer {
  const w = 240;
  const h = 160;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const d = Math.hypot(x - 140, y - 70);
      raw[o] = 235 - Math.min(60, d / 3);
      raw[o + 1] = 200 - Math.min(80, d / 2) + (d < 30 ? -60 : 0);
      raw[o + 2] = 190 - Math.min(80, d / 2) + (d < 30 ? -70 : 0);
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const byte of b) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
