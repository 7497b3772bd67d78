import type { Logger } from 'pino';
import { replaceTemplates } from '../db/repo/templates';
import type { Database } from '../db/types';
import type { GraphClient } from './client';

/**
 * Replaces the local template set with the WhatsApp Business Account's approved templates. Every
 * page is fetched before anything is written, so a failure halfway (network, token) leaves the
 * previous set in place rather than a partial one. Throws the client's `GraphError`.
 */
export async function syncTemplates(deps: { db: Database; client: GraphClient; wabaId: string; now: () => number; logger: Logger }): Promise<{ count: number }> {
  const templates = await deps.client.listTemplates({ wabaId: deps.wabaId, status: 'APPROVED' });
  // Meta filters by status on its side; this keeps a lenient server from slipping others in.
  const approved = templates.filter((t) => t.status === 'APPROVED');
  const count = replaceTemplates(deps.db, approved, deps.now());
  deps.logger.info({ component: 'templates', count }, 'templates synced');
  return { count };
}
