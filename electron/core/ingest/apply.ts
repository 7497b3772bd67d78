import type { Webhook } from '../../../shared/whatsapp/webhook';
import { applyIdentityUpdate, findContactForIdentityUpdate, upsertContactFromWebhook } from '../db/repo/contacts';
import { getOrCreateConversation, noteMessage } from '../db/repo/conversations';
import { applyPendingRevisions, getMessageByWamid, insertInboundMessage, recordRevision, upsertCall, upsertReaction } from '../db/repo/messages';
import { applyPendingStatuses, recordStatus, type StatusChange } from '../db/repo/statuses';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { normalizeWebhook, type NormalizedContact, type NormalizedWebhook } from './normalize';
import { bumpIngestCount, recordWebhookError, shelveItem } from './trace';

export interface ApplyResult {
  /** Messages stored by this call (a redelivered wamid is not here). */
  newMessages: { messageId: number; conversationId: number; wamid: string; type: string }[];
  /** Outbound messages whose current status moved. */
  statusChanges: StatusChange[];
  /** Conversations whose reactions changed (for a UI refresh of that thread). */
  reactionChanges: { conversationId: number; targetWamid: string }[];
  /** Stored messages an edit, a revoke or a call event changed (for a UI refresh of that message). */
  messageChanges: { conversationId: number; messageId: number }[];
  /** Every conversation touched (new messages, statuses, reactions), deduplicated. */
  conversationIds: number[];
  /** Contacts created or whose Meta-provided details changed. */
  contactIds: number[];
  counts: {
    messages: number;
    duplicateMessages: number;
    unsupportedMessages: number;
    statuses: number;
    duplicateStatuses: number;
    /** Statuses kept for a wamid not (yet) stored: applied when the message appears. */
    pendingStatuses: number;
    reactions: number;
    /** The clinic's messages sent from the WhatsApp Business app (`smb_message_echoes`), stored. */
    echoes: number;
    /** Edits and revokes recorded (a redelivered event is a duplicate); `pendingRevisions` wait for their message. */
    edits: number;
    revokes: number;
    pendingRevisions: number;
    duplicateRevisions: number;
    /** Call events (`calls`): new lines and updates of a call's line. */
    calls: number;
    /** Items shelved in `dead_letters` by this delivery (unattributable messages, ignored fields). */
    shelved: number;
    valueErrors: number;
    ignoredChanges: number;
    invalidChanges: number;
    unattributable: number;
    /** Contacts moved to a new number or BSUID by a `system` message. */
    identityChanges: number;
    /** New ids from such a message that another contact already held, so they were left there. */
    identityConflicts: number;
  };
  /** Issue paths of `messages` changes that did not parse (no values: they may hold patient data). */
  invalidIssues: string[];
  valueErrors: NormalizedWebhook['valueErrors'];
  /** Changes of fields this version does not ingest (shelved), by field name. */
  ignoredByField: Record<string, number>;
}

/**
 * Stores what a webhook says, in ONE transaction: all of it or none of it, so the caller can ack
 * the relay only after this returns. Idempotent: applying the same webhook twice changes nothing
 * the second time (unique wamid; unique (wamid, status); reactions keyed by sender and message).
 */
export function applyWebhook(db: Database, webhook: Webhook, options: { receivedAt: number }): ApplyResult {
  return applyNormalizedWebhook(db, normalizeWebhook(webhook), options);
}

export function applyNormalizedWebhook(db: Database, n: NormalizedWebhook, options: { receivedAt: number }): ApplyResult {
  return db.transaction(() => applyInTransaction(db, n, options.receivedAt)).immediate();
}

/** What a delivery that stored nothing reports. */
export function emptyApplyResult(): ApplyResult {
  return {
    newMessages: [],
    statusChanges: [],
    reactionChanges: [],
    messageChanges: [],
    conversationIds: [],
    contactIds: [],
    counts: {
      messages: 0,
      duplicateMessages: 0,
      unsupportedMessages: 0,
      statuses: 0,
      duplicateStatuses: 0,
      pendingStatuses: 0,
      reactions: 0,
      echoes: 0,
      edits: 0,
      revokes: 0,
      pendingRevisions: 0,
      duplicateRevisions: 0,
      calls: 0,
      shelved: 0,
      valueErrors: 0,
      ignoredChanges: 0,
      invalidChanges: 0,
      unattributable: 0,
      identityChanges: 0,
      identityConflicts: 0,
    },
    invalidIssues: [],
    valueErrors: [],
    ignoredByField: {},
  };
}

function applyInTransaction(db: Database, n: NormalizedWebhook, now: number): ApplyResult {
  const result = emptyApplyResult();
  for (const e of n.valueErrors) if (recordWebhookError(db, e, now)) result.counts.valueErrors += 1;
  for (const item of n.shelved) if (shelveItem(db, item, now, now)) result.counts.shelved += 1;
  result.counts.ignoredChanges = n.counts.ignoredChanges;
  result.counts.invalidChanges = n.counts.invalidChanges;
  result.counts.unattributable = n.counts.unattributable;
  result.invalidIssues = n.invalidIssues;
  result.valueErrors = n.valueErrors;
  result.ignoredByField = n.counts.ignoredByField;
  const conversations = new Set<number>();
  const contacts = new Set<number>();

  const conversationFor = (sender: NormalizedContact, phoneNumberId: string, at: number) => {
    const contact = upsertContactFromWebhook(db, sender, now);
    if (contact.changed) contacts.add(contact.id);
    return { contactId: contact.id, conversationId: getOrCreateConversation(db, contact.id, phoneNumberId, now, at).id };
  };

  for (const m of n.messages) {
    // An identity change is filed under the contact it changes, found by the ids it had before, so
    // the new ids do not open a second thread for the same patient.
    if (m.identityChange && getMessageByWamid(db, m.wamid)) {
      // Checked first: a redelivered notice whose old ids are gone must not recreate them.
      result.counts.duplicateMessages += 1;
      continue;
    }
    const known = m.identityChange ? findContactForIdentityUpdate(db, m.sender, m.identityChange) : null;
    const { contactId, conversationId } = known
      ? { contactId: known.id, conversationId: getOrCreateConversation(db, known.id, m.phoneNumberId, now, m.sentAt).id }
      : conversationFor(m.sender, m.phoneNumberId, m.sentAt);
    const messageId = insertInboundMessage(
      db,
      {
        conversationId,
        direction: m.direction,
        origin: m.origin,
        wamid: m.wamid,
        type: m.type,
        text: m.text,
        content: m.unsupported && m.type === 'unsupported' ? { ...m.content, clinic_inbox_unsupported: m.unsupported } : m.content,
        contextWamid: m.contextWamid,
        mediaId: m.mediaId,
        sentAt: m.sentAt,
      },
      now,
    );
    if (messageId === null) {
      result.counts.duplicateMessages += 1;
      continue;
    }
    result.counts.messages += 1;
    if (m.origin === 'phone') result.counts.echoes += 1;
    if (m.unsupported) {
      result.counts.unsupportedMessages += 1;
      bumpIngestCount(db, `unsupported:${m.unsupported}`, now);
    }
    conversations.add(conversationId);
    result.newMessages.push({ messageId, conversationId, wamid: m.wamid, type: m.type });
    // The clinic's own message from its phone neither opens the service window nor counts as unread.
    const inbound = m.direction === 'inbound';
    noteMessage(db, conversationId, { messageId, at: m.sentAt, inbound, countsUnread: inbound && m.type !== 'system' }, now);
    if (m.mediaId && m.media) {
      // The media downloader (electron/core/media) picks pending rows up; the bytes come later.
      stmt(
        db,
        `INSERT INTO media (media_id, message_id, mime_type, sha256, filename, state, next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (media_id) DO NOTHING`,
      ).run(m.mediaId, messageId, m.media.mimeType, m.media.sha256, m.media.filename, now, now, now);
    }
    // Only when the notice is new: a redelivered old notice must not undo a later change.
    if (m.identityChange) {
      const r = applyIdentityUpdate(db, contactId, m.identityChange, now);
      result.counts.identityConflicts += r.conflicts;
      if (r.changed) {
        result.counts.identityChanges += 1;
        contacts.add(contactId);
      }
    }
    // Statuses never concern inbound messages in Meta's model, but a status that raced ahead of
    // its message is applied here all the same, so no history is lost.
    const change = applyPendingStatuses(db, messageId, now);
    if (change) result.statusChanges.push(change);
    // An edit or revoke that overtook its message (one index probe when there is none).
    if (applyPendingRevisions(db, { id: messageId, wamid: m.wamid }, now)) result.messageChanges.push({ conversationId, messageId });
  }

  for (const r of n.revisions) {
    const { conversationId } = conversationFor(r.sender, r.phoneNumberId, r.at);
    const outcome = recordRevision(
      db,
      { conversationId, eventWamid: r.eventWamid, originalWamid: r.originalWamid, kind: r.kind, direction: r.direction, text: r.text, content: r.content, at: r.at },
      now,
    );
    if (outcome.outcome === 'duplicate') {
      result.counts.duplicateRevisions += 1;
      continue;
    }
    if (r.kind === 'edit') result.counts.edits += 1;
    else result.counts.revokes += 1;
    if (outcome.outcome === 'pending') result.counts.pendingRevisions += 1;
    if (outcome.outcome === 'applied' && outcome.messageId !== null) {
      conversations.add(conversationId);
      result.messageChanges.push({ conversationId, messageId: outcome.messageId });
    }
  }

  for (const c of n.calls) {
    const { conversationId } = conversationFor(c.sender, c.phoneNumberId, c.at);
    const r = upsertCall(db, { conversationId, callId: c.callId, direction: c.direction, call: c.call, at: c.at }, now);
    if (!r.changed) continue;
    result.counts.calls += 1;
    conversations.add(conversationId);
    if (r.created) {
      result.newMessages.push({ messageId: r.messageId, conversationId, wamid: c.callId, type: 'call' });
      // A patient's call opens (or renews) the service window, like a message; it is not an unread message.
      noteMessage(db, conversationId, { messageId: r.messageId, at: c.at, inbound: c.direction === 'inbound', countsUnread: false }, now);
    } else result.messageChanges.push({ conversationId, messageId: r.messageId });
  }

  for (const r of n.reactions) {
    const { contactId, conversationId } = conversationFor(r.sender, r.phoneNumberId, r.reactedAt);
    result.counts.reactions += 1;
    const changed = upsertReaction(db, {
      targetWamid: r.targetWamid,
      contactId,
      fromBusiness: r.fromBusiness === true,
      emoji: r.emoji,
      reactionWamid: r.reactionWamid,
      reactedAt: r.reactedAt,
    });
    if (changed) {
      conversations.add(conversationId);
      result.reactionChanges.push({ conversationId, targetWamid: r.targetWamid });
    }
  }

  for (const s of n.statuses) {
    result.counts.statuses += 1;
    const r = recordStatus(db, s, now);
    if (!r.recorded) result.counts.duplicateStatuses += 1;
    else if (r.pending) result.counts.pendingStatuses += 1;
    if (r.change) {
      result.statusChanges.push(r.change);
      conversations.add(r.change.conversationId);
    }
    if (r.reaction) result.reactionChanges.push({ conversationId: r.reaction.conversationId, targetWamid: r.reaction.targetWamid });
  }

  result.conversationIds = [...conversations];
  result.contactIds = [...contacts];
  return result;
}
