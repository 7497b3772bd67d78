import type { KeyObject } from 'node:crypto';
import { CodedError } from '../../../shared/errors';
import type { AuditVerdict } from '../../../shared/rpc';
import type { Database } from '../db/types';
import type { LinkManager } from '../link/linkManager';
import type { Handlers } from '../rpc/dispatch';
import { buildAuditExport } from './export';
import { findPatients, queryAudit, toViews } from './reports';
import { verifyChain, type VerifyChainOptions } from './verifyChain';

type AuditMethods = 'audit.verify' | 'audit.query' | 'audit.findPatients' | 'audit.export';

export interface AuditHandlerDeps {
  db: Database;
  now: () => number;
  link: Pick<LinkManager, 'checkpoint' | 'pairing'>;
  installationId: string;
  /** The device signing key: an export's checkpoint is signed with it, its public half travels with it. */
  signing: { privateKey: KeyObject; publicKeyRaw: string };
  /** The database file and its key: the chain is verified in worker threads on connections of their own. */
  database: { path: string; key: Buffer };
  /** Tests force the workers on a small log. */
  verify?: VerifyChainOptions;
}

/** The auditor's desk: verify the chain, query and report, export with proof. */
export function createAuditHandlers(deps: AuditHandlerDeps): Pick<Handlers, AuditMethods> {
  const { db, link } = deps;

  /** Signs the head, has the relay witness it and compares with what it held; null: the relay could not say. */
  async function askWitness(): Promise<AuditVerdict['witness']> {
    try {
      return await link.checkpoint();
    } catch (err) {
      return { ok: null, reason: err instanceof CodedError ? err.message : 'The relay could not be asked.' };
    }
  }

  return {
    'audit.verify': async ({ withRelayWitness }) => {
      const chain = await verifyChain({ db, database: deps.database }, deps.verify);
      const witness: AuditVerdict['witness'] = withRelayWitness ? await askWitness() : { ok: null, reason: 'not asked' };
      return {
        chain: chain.ok
          ? { ok: true, entries: chain.entries, headSeq: chain.head?.seq ?? null, prunedThrough: chain.prunedThrough ?? null }
          : { ok: false, entries: chain.entries, brokenAt: chain.brokenAt, reason: chain.reason },
        witness,
      };
    },

    'audit.query': ({ filter, cursor, limit }) => {
      const page = queryAudit(db, filter, { cursor, limit });
      return { items: toViews(db, page.rows), nextCursor: page.nextCursor };
    },

    'audit.findPatients': ({ query }, ctx) => {
      const found = findPatients(db, query);
      // The auditor saw these names: the entry says which patients.
      for (const p of found) ctx.concerns(p.contactId);
      return found;
    },

    'audit.export': async ({ filter }, ctx) => {
      // An export of one patient's trail is itself about that patient.
      if (filter.contactId !== undefined) ctx.concerns(filter.contactId);
      const witness = await askWitness();
      return buildAuditExport(db, filter, {
        installationId: deps.installationId,
        applianceId: link.pairing()?.applianceId ?? null,
        signing: deps.signing,
        witness,
        at: deps.now(),
      });
    },
  };
}
