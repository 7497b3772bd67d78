import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookSchema } from '../../../shared/whatsapp/webhook';
import type { Database } from '../db/types';
import { applyWebhook } from '../ingest/apply';
import { appSecretKeys, verifyMetaSignature } from '../link/metaSignature';

export interface IngestSink {
  /** Where the Graph API simulator posts its webhooks. */
  webhookUrl: string;
  close(): Promise<void>;
}

/**
 * The appliance side of Meta's webhooks without the relay, for tests of the Graph API side: checks
 * `X-Hub-Signature-256` with the core's own verifier, then stores the webhook with ingest's
 * `applyWebhook`, as the core does after opening an envelope. A bad signature gets 401.
 */
export async function startIngestSink(opts: { db: Database; appSecret: string; afterIngest?: () => void }): Promise<IngestSink> {
  const secrets = appSecretKeys([opts.appSecret]);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (!verifyMetaSignature(secrets, raw, String(req.headers['x-hub-signature-256'] ?? ''))) return void res.writeHead(401).end();
      applyWebhook(opts.db, WebhookSchema.parse(JSON.parse(raw.toString('utf8'))), { receivedAt: Date.now() });
      opts.afterIngest?.();
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    webhookUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/whatsapp`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
