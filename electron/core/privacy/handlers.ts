import { randomUUID } from 'node:crypto';
import { CodedError } from '../../../shared/errors';
import type { Consent, RpcMethod } from '../../../shared/rpc';
import type { Database } from '../db/types';
import type { Handlers } from '../rpc/dispatch';
import { consentHistory, currentConsentStatus, loadKeywords, recordConsent, saveKeywords } from './consent';
import { checkOutgoing, sendGuardMode, setSendGuardMode } from './guard';
import { clearLegalHold, getLegalHold, setLegalHold } from './legalHold';
import { completeRequest, getRequest, listRequests, registerRequest } from './requests';
import { lastRetentionRun, previewRetention, retentionRules, updateRetentionRules } from './retention';
import type { PrivacyService } from './service';

type PrivacyMethod = Extract<RpcMethod, `privacy.${string}`>;

function consentOf(db: Database, contactId: number): Consent {
  const history = consentHistory(db, contactId);
  const status = currentConsentStatus(db, contactId);
  return { contactId, status, current: history[0] ?? null, history, templatesAllowed: status !== 'opted_out' };
}

function contactExists(db: Database, contactId: number): void {
  if (!db.prepare('SELECT 1 FROM contacts WHERE id = ?').get(contactId)) throw new CodedError('NOT_FOUND', `There is no contact ${contactId}.`);
}

/** The privacy slice of the RPC (except `privacy.eraseContact`, which sits with backups). */
export function createPrivacyHandlers(deps: { db: Database; now: () => number; privacy: PrivacyService }): Pick<Handlers, Exclude<PrivacyMethod, 'privacy.eraseContact'>> {
  const { db, now, privacy } = deps;
  return {
    'privacy.getConsent': ({ contactId }, ctx) => {
      ctx.concerns(contactId);
      contactExists(db, contactId);
      return consentOf(db, contactId);
    },
    'privacy.recordConsent': ({ contactId, status, source, note }, ctx) => {
      ctx.concerns(contactId);
      if (recordConsent(db, { contactId, status, source, by: ctx.me.userId, note: note ?? null, now: now() })) ctx.afterCommit(() => privacy.notifyConsent(contactId));
      return consentOf(db, contactId);
    },
    'privacy.getKeywords': () => loadKeywords(db),
    'privacy.updateKeywords': (keywords) => saveKeywords(db, keywords, now()),
    'privacy.getSettings': () => ({ sendGuard: sendGuardMode(db) }),
    'privacy.updateSettings': ({ sendGuard }) => {
      setSendGuardMode(db, sendGuard, now());
      return { sendGuard };
    },
    'privacy.checkOutgoing': ({ text }) => checkOutgoing(db, text),
    'privacy.requests.list': ({ state, contactId }, ctx) => {
      const items = listRequests(db, { state, now: now(), ...(contactId ? { contactId } : {}) });
      for (const r of items) if (r.contactName !== null) ctx.concerns(r.contactId);
      return items;
    },
    'privacy.requests.register': ({ contactId, kind, receivedAt, note }, ctx) => {
      ctx.concerns(contactId);
      const t = now();
      const request = registerRequest(db, { contactId, kind, via: 'desk', by: ctx.me.userId, receivedAt: receivedAt ?? t, note: note ?? null, now: t });
      ctx.afterCommit(() => privacy.notifyRequest(request.id, kind));
      return request;
    },
    'privacy.requests.complete': ({ requestId, outcome }, ctx) => {
      const existing = getRequest(db, requestId, now());
      if (existing) ctx.concerns(existing.contactId);
      return completeRequest(db, { id: requestId, by: ctx.me.userId, outcome, now: now() });
    },
    'privacy.export': async ({ contactId, destinationDir, exportId }, ctx) => {
      ctx.concerns(contactId);
      return privacy.exportPatient({ contactId, destinationDir, exportedBy: ctx.me.userId, exportId: exportId ?? randomUUID() });
    },
    'privacy.legalHold.get': ({ contactId }, ctx) => {
      ctx.concerns(contactId);
      contactExists(db, contactId);
      return getLegalHold(db, contactId);
    },
    'privacy.legalHold.set': ({ contactId, reason }, ctx) => {
      ctx.concerns(contactId);
      ctx.because(reason);
      return setLegalHold(db, { contactId, reason, by: ctx.me.userId, now: now() });
    },
    'privacy.legalHold.clear': ({ contactId, reason }, ctx) => {
      ctx.concerns(contactId);
      ctx.because(reason);
      contactExists(db, contactId);
      return { cleared: clearLegalHold(db, contactId) };
    },
    'privacy.retention.get': () => ({ rules: retentionRules(db), lastRun: lastRetentionRun(db), nextRunAt: privacy.nextRetentionAt() }),
    'privacy.retention.update': ({ rules }, ctx) => updateRetentionRules(db, rules, { by: ctx.me.userId, now: now() }),
    'privacy.retention.preview': () => previewRetention(db, now()),
    'privacy.retention.runNow': (_input, ctx) => {
      const me = ctx.me;
      return privacy.runRetention('manual', { userId: me.userId, displayName: me.displayName, role: me.roles.join('+'), sessionId: me.id, origin: ctx.caller.origin });
    },
  };
}
