import { CodedError } from '../../../shared/errors';
import type { AuditVerdict } from '../../../shared/rpc';
import type { Database } from '../db/types';
import type { LinkManager } from '../link/linkManager';
import type { Handlers } from '../rpc/dispatch';
import { verifyAuditChain } from './auditLog';

type AuditMethods = 'audit.verify' | 'audit.query' | 'audit.findPatients' | 'audit.export';

export interface AuditHandlerDeps {
  db: Database;
  now: () => number;
  link: LinkManager;
}

/** The auditor's desk: verify the chain, query and report, export with proof. */
export function createAuditHandlers(deps: AuditHandlerDeps): Pick<Handlers, AuditMethods> {
  const { db, link } = deps;
  return {
    'audit.verify': async ({ withRelayWitness }) => {
      const chain = verifyAuditChain(db);
      let witness: AuditVerdict['witness'];
      if (!withRelayWitness) witness = { ok: null, reason: 'not asked' };
      else {
        try {
          witness = await link.checkpoint();
        } catch (err) {
          witness = { ok: null, reason: err instanceof CodedError ? err.message : 'The relay could not be asked.' };
        }
      }
      return {
        chain: chain.ok
          ? { ok: true, entries: chain.entries, headSeq: chain.head?.seq ?? null }
          : { ok: false, entries: chain.entries, brokenAt: chain.brokenAt, reason: chain.reason },
        witness,
      };
    },

    'audit.query': () => {
      throw new CodedError('UNAVAILABLE', 'not built yet');
    },
    'audit.findPatients': () => {
      throw new CodedError('UNAVAILABLE', 'not built yet');
    },
    'audit.export': () => {
      throw new CodedError('UNAVAILABLE', 'not built yet');
    },
  };
}
