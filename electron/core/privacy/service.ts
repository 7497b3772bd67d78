import type { Logger } from 'pino';
import type { KeywordLanguage, RequestKind, RetentionRun, RpcEventName, RpcEventPayload } from '../../../shared/rpc';
import type { AuditRecord } from '../rpc/dispatch';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import type { ApplyResult } from '../ingest/apply';
import { loadKeywords, matchKeyword, recordConsent } from './consent';
import { writePatientExport, type ExportProgress } from './export';
import { accessReply, optedInReply, optedOutReply, replyLanguage } from './replies';
import { openRequestOf, registerRequest } from './requests';
import { lastSuccessfulRunAt, retentionRun, runRetention } from './retention';

/** Meta: "Unable to deliver marketing messages: the user has stopped marketing messages from you." */
export const META_OPTED_OUT = 131050;
const DAY = 24 * 60 * 60_000;
/** Message types whose text a patient typed or tapped (a template's "Stop" quick-reply button is `button`). */
const KEYWORD_TYPES = new Set(['text', 'button', 'interactive']);

export interface PrivacyDeps {
  db: Database;
  now: () => number;
  logger: Logger;
  emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
  /** Appends to the audit log (the core's `appendAudit`). */
  audit(record: AuditRecord): void;
  /** Queues an automatic free-text reply (no author, inside the window the patient just opened). */
  sendAutomatic(conversationId: number, text: string): void;
  /** How often the daily job checks whether a run is due; tests shorten it. */
  retentionCheckMs?: number;
}

export interface AuditSubjectLike {
  userId: string;
  displayName: string | null;
  role: string;
  sessionId: string | null;
  origin: string;
}

const SYSTEM: AuditSubjectLike = { userId: 'system', displayName: 'Clinic Inbox', role: '-', sessionId: null, origin: 'whatsapp' };

export interface PrivacyService {
  /** After each committed relay delivery: keywords in new messages, Meta's opt-out signal in statuses. */
  afterIngest(result: ApplyResult): void;
  /** A sent message's status settled outside ingest (its status webhook beat the Graph API's answer): Meta's opt-out signal. */
  afterOutboundStatus(change: { conversationId: number; status: string; errorCode: number | null }): void;
  exportPatient(p: { contactId: number; destinationDir: string; exportedBy: string; exportId: string }): ReturnType<typeof writePatientExport>;
  /** Runs retention now (joining a run in progress); writes the run's one audit entry. */
  runRetention(trigger: 'schedule' | 'manual', by?: AuditSubjectLike): Promise<RetentionRun>;
  nextRetentionAt(): number | null;
  /** A consent recorded at a desk: every other window's contact panel shows it at once. */
  notifyConsent(contactId: number): void;
  /** A request was registered at the desk: admins' lists refresh. */
  notifyRequest(requestId: number, kind: RequestKind): void;
  start(): void;
  stop(): Promise<void>;
}

export function createPrivacy(deps: PrivacyDeps): PrivacyService {
  const { db, now, emit } = deps;
  const log = deps.logger.child({ part: 'privacy' });
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<RetentionRun> | null = null;
  let stopped = false;

  const auditSystem = (contactId: number, method: string, action: AuditRecord['action'], reason: string) =>
    deps.audit({ ...SYSTEM, action, method, contactIds: [contactId], outcome: 'ok', reason });

  function onKeyword(messageId: number): void {
    const row = stmt(
      db,
      `SELECT m.text, m.conversation_id, c.contact_id, k.wa_id FROM messages m
         JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id WHERE m.id = ?`,
    ).get(messageId) as { text: string | null; conversation_id: number; contact_id: number; wa_id: string | null } | undefined;
    if (!row) return;
    const match = matchKeyword(loadKeywords(db), row.text);
    if (!match) return;
    const lang: KeywordLanguage = replyLanguage(match.languages, row.wa_id);
    const t = now();
    const reply = db.transaction((): string | null => {
      if (match.intent === 'access') {
        if (openRequestOf(db, row.contact_id, 'access') !== null) return null;
        const request = registerRequest(db, { contactId: row.contact_id, kind: 'access', via: 'whatsapp', by: 'system', receivedAt: t, note: 'asked on WhatsApp', now: t });
        auditSystem(row.contact_id, 'privacy.keyword.access', 'create', 'access request by WhatsApp keyword');
        emit('privacy.requestReceived', { requestId: request.id, kind: 'access' });
        return accessReply(lang, request.dueAt);
      }
      const status = match.intent === 'optOut' ? 'opted_out' : 'opted_in';
      if (!recordConsent(db, { contactId: row.contact_id, status, source: 'keyword', by: 'system', note: `keyword (${lang})`, now: t })) return null;
      auditSystem(row.contact_id, 'privacy.keyword.consent', 'update', status === 'opted_out' ? 'opt-out keyword' : 'opt-in keyword');
      emit('privacy.consentChanged', { contactId: row.contact_id });
      return status === 'opted_out' ? optedOutReply(lang) : optedInReply(lang);
    })();
    if (reply === null) return;
    try {
      deps.sendAutomatic(row.conversation_id, reply);
    } catch (err) {
      // The state changed; only the courtesy reply failed (the window may have closed on a late delivery).
      log.warn({ code: (err as { code?: string }).code ?? 'error', intent: match.intent }, 'privacy keyword reply not sent');
    }
  }

  function onMetaOptOut(conversationId: number): void {
    const row = stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined;
    if (!row) return;
    db.transaction(() => {
      if (recordConsent(db, { contactId: row.contact_id, status: 'opted_out', source: 'meta', by: 'system', note: `Meta error ${META_OPTED_OUT}`, now: now() })) {
        auditSystem(row.contact_id, 'privacy.meta.optOut', 'update', `Meta reported ${META_OPTED_OUT}: the patient stopped marketing messages`);
        emit('privacy.consentChanged', { contactId: row.contact_id });
      }
    })();
  }

  async function retention(trigger: 'schedule' | 'manual', by: AuditSubjectLike): Promise<RetentionRun> {
    const result = await runRetention(db, { now, trigger, by });
    const c = result.counts;
    deps.audit({
      ...by,
      action: 'delete',
      method: 'privacy.retention.run',
      contactIds: [],
      outcome: 'ok',
      reason: `retention (${trigger}): ${c.messages} messages, ${c.conversations} conversations, ${c.media} files removed; ${c.audit} audit entries past policy pruned, ${c.auditHeld} kept because of a legal hold; ${c.heldPatients} patients on legal hold skipped`,
    });
    log.info({ ...c, batches: result.batches, longestHoldMs: Math.round(result.longestHoldMs * 10) / 10 }, 'retention run finished');
    emit('privacy.retentionFinished', { runId: result.runId });
    return retentionRun(db, result.runId)!;
  }

  function check(): void {
    if (stopped || running) return;
    const last = lastSuccessfulRunAt(db);
    if (last !== null && now() - last < DAY) return;
    void service.runRetention('schedule').catch((err: unknown) => log.error({ err: err instanceof Error ? err.name : 'error' }, 'scheduled retention failed'));
  }

  const service: PrivacyService = {
    afterIngest(result) {
      for (const m of result.newMessages) {
        if (!KEYWORD_TYPES.has(m.type)) continue;
        try {
          onKeyword(m.messageId);
        } catch (err) {
          log.error({ err: err instanceof Error ? err.name : 'error' }, 'privacy keyword handling failed');
        }
      }
      for (const s of result.statusChanges) {
        if (s.status === 'failed' && s.errorCode === META_OPTED_OUT) onMetaOptOut(s.conversationId);
      }
    },

    afterOutboundStatus(change) {
      if (change.status === 'failed' && change.errorCode === META_OPTED_OUT) onMetaOptOut(change.conversationId);
    },

    exportPatient({ exportId, ...p }) {
      const progress: ExportProgress = (phase, fraction) => emit('privacy.exportProgress', { exportId, phase, fraction });
      return writePatientExport(db, { ...p, now: now(), progress });
    },

    runRetention(trigger, by = { ...SYSTEM, origin: 'core' }) {
      running ??= retention(trigger, by).finally(() => {
        running = null;
      });
      return running;
    },

    notifyRequest: (requestId, kind) => emit('privacy.requestReceived', { requestId, kind }),
    notifyConsent: (contactId) => emit('privacy.consentChanged', { contactId }),

    nextRetentionAt() {
      const last = lastSuccessfulRunAt(db);
      return last === null ? now() : last + DAY;
    },

    start() {
      const every = deps.retentionCheckMs ?? 60 * 60_000;
      timer = setInterval(check, every);
      timer.unref();
    },

    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
  return service;
}
