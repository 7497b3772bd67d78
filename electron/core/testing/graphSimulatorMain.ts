// The Graph API simulator as its own process, for the demo and manual testing:
//
//   GRAPH_SIM_TOKEN=… GRAPH_SIM_APP_SECRET=… node --import tsx electron/core/testing/graphSimulatorMain.ts \
//     --webhook-url http://127.0.0.1:8080/webhooks/whatsapp [--port 0] [--phone-number-id …] [--waba-id …]
//
// Without `--webhook-url` (and the app secret) it posts no webhooks and only answers the clinic's
// calls, as the benchmarks use it: Meta on a machine of its own, so its work shares no event loop
// or core with the client being measured. `--any-recipient` accepts sends to patients it never saw
// write (the 24-hour window is the core's to check there); `--upload-mbit 20` reads uploads no faster
// than a clinic's uplink would carry them.
//
// Secrets come from the environment, not argv (argv shows in `ps`). It prints one JSON line,
// {"graphUrl", "controlUrl"}, then serves until SIGTERM/SIGINT. The control server (a separate
// port, so Meta's surface stays exactly Meta's) lets the demo play the patient:
//   POST {controlUrl}/inbound  {"from","name","text"}                  → a signed inbound webhook
//   POST {controlUrl}/media    {"from","name","kind","mimeType","base64","caption"?} → inbound media
//   POST {controlUrl}/status   {"wamid","status"}                      → a signed status webhook
//   GET  {controlUrl}/sends                                            → what the clinic sent
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { MEDIA_KINDS } from '../media/limits';
import { createGraphSimulator } from './graphSimulator';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'control-port': { type: 'string', default: '0' },
    'webhook-url': { type: 'string' },
    'phone-number-id': { type: 'string', default: '110000000000001' },
    'display-phone-number': { type: 'string', default: '15550001234' },
    'waba-id': { type: 'string', default: '100000000000001' },
    'status-delay-ms': { type: 'string', default: '800' },
    'any-recipient': { type: 'boolean', default: false },
    'upload-mbit': { type: 'string' },
  },
});

const token = process.env.GRAPH_SIM_TOKEN;
const appSecret = process.env.GRAPH_SIM_APP_SECRET;
const webhookUrl = values['webhook-url'];
if (!token || (webhookUrl !== undefined && !appSecret)) {
  process.stderr.write('graphSimulatorMain: set GRAPH_SIM_TOKEN (and GRAPH_SIM_APP_SECRET with --webhook-url)\n');
  process.exit(2);
}

const logger = pino({ level: 'info', base: { part: 'graph-simulator' } });
const sim = createGraphSimulator({
  accessToken: token,
  ...(webhookUrl !== undefined && appSecret !== undefined
    ? { appSecret, webhookUrl, autoStatuses: { afterMs: Number(values['status-delay-ms']), statuses: ['sent', 'delivered', 'read'] } }
    : {}),
  phoneNumberId: values['phone-number-id']!,
  displayPhoneNumber: values['display-phone-number']!,
  wabaId: values['waba-id']!,
  enforceWindow: !values['any-recipient'],
  ...(values['upload-mbit'] ? { uploadBitsPerSecond: Number(values['upload-mbit']) * 1e6 } : {}),
  templates: [
    { name: 'appointment_reminder', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Erinnerung: Ihr Termin ist am {{1}} um {{2}} Uhr.' }] },
    { name: 'appointment_reminder', language: 'en_US', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Reminder: your appointment is on {{1}} at {{2}}.' }] },
    { name: 'results_ready', language: 'de', status: 'APPROVED', category: 'UTILITY', components: [{ type: 'BODY', text: 'Ihre Befunde liegen vor. Bitte melden Sie sich in der Praxis.' }] },
  ],
  logger,
});

const controlToken = randomBytes(16).toString('hex');
const InboundSchema = z.object({ from: z.string().regex(/^\d{6,20}$/), name: z.string().max(100), text: z.string().min(1).max(4096) });
const MediaSchema = z.object({
  from: z.string().regex(/^\d{6,20}$/),
  name: z.string().max(100),
  kind: z.enum(MEDIA_KINDS),
  mimeType: z.string(),
  base64: z.string(),
  caption: z.string().max(1024).optional(),
});
const StatusSchema = z.object({ wamid: z.string().min(1), status: z.enum(['sent', 'delivered', 'read', 'failed']) });

const control = createServer((req, res) => {
  const answer = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const presented = Buffer.from(req.headers.authorization?.replace(/^Bearer /, '') ?? '');
  if (presented.length !== controlToken.length || !timingSafeEqual(presented, Buffer.from(controlToken))) return answer(401, { error: 'control token required' });
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      try {
        const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
        if (req.method === 'GET' && req.url === '/sends') return answer(200, sim.sends);
        if (req.method === 'POST' && req.url === '/inbound') return answer(200, await sim.postInbound(InboundSchema.parse(body)));
        if (req.method === 'POST' && req.url === '/media') {
          const m = MediaSchema.parse(body);
          const mediaId = sim.addMedia({ bytes: Buffer.from(m.base64, 'base64'), mimeType: m.mimeType });
          return answer(200, await sim.postInbound({ from: m.from, name: m.name, media: { kind: m.kind, mediaId, ...(m.caption ? { caption: m.caption } : {}) } }));
        }
        if (req.method === 'POST' && req.url === '/status') {
          const s = StatusSchema.parse(body);
          return answer(200, { status: await sim.postStatus(s.wamid, s.status) });
        }
        answer(404, { error: 'unknown control route' });
      } catch (err) {
        answer(400, { error: err instanceof Error ? err.message.slice(0, 300) : 'bad request' });
      }
    })();
  });
});

const graphUrl = await sim.listen(Number(values.port));
await new Promise<void>((r) => control.listen(Number(values['control-port']), '127.0.0.1', r));
const controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;
process.stdout.write(`${JSON.stringify({ graphUrl, controlUrl, controlToken })}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    control.close();
    void sim.close().then(() => process.exit(0));
  });
}
