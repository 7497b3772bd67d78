import type { Database } from '../db/types';
import { CodedError } from '../../../shared/errors';
import type { ConversationSummary, Contact, MessageView, QuickReply, RpcEventName, RpcEventPayload } from '../../../shared/rpc';
import { HIGHLIGHT_END, HIGHLIGHT_START } from '../../../shared/rpc';
import { getContact, searchContacts, updateContact, type ContactRow } from '../db/repo/contacts';
import {
  assignConversation,
  getConversation,
  listConversations,
  markConversationRead,
  markConversationUnread,
  setConversationStatus,
  type ConversationListItem,
} from '../db/repo/conversations';
import { getMessageByWamid, listThread, type ThreadMessage } from '../db/repo/messages';
import { addQuickReply, listQuickReplies, removeQuickReply, type QuickReplyRow } from '../db/repo/quickReplies';
import { searchMessages } from '../db/repo/search';
import { presentMessage } from '../ingest/present';
import { decodeFileBase64 } from '../media/base64';
import { customerServiceWindow } from '../window';
import type { RecoveryService } from '../keys/recovery';
import type { LinkManager } from '../link/linkManager';
import type { WhatsAppService } from '../whatsapp';
import type { Handlers } from './dispatch';

export interface HandlerDeps {
  db: Database;
  now: () => number;
  link: LinkManager;
  whatsapp: WhatsAppService;
  recovery: RecoveryService;
  emit<E extends RpcEventName>(event: E, payload: RpcEventPayload<E>): void;
}

/**
 * The inbox's and the set-up's RPC handlers (the features with folders of their own — accounts,
 * audit — bring their own slices). Role checks, validation and auditing happen in `dispatch`.
 */
export function createHandlers(deps: HandlerDeps): Omit<Handlers, `${'auth' | 'session' | 'users' | 'sessions' | 'security' | 'access' | 'audit' | 'backup' | 'privacy' | 'settings' | 'status' | 'diagnostics' | 'updates' | 'calendar' | 'events'}.${string}`> {
  const { db, now, link, whatsapp, recovery, emit } = deps;

  function conversationOrThrow(id: number): ConversationListItem {
    const conversation = getConversation(db, id);
    if (!conversation) throw new CodedError('NOT_FOUND', `Conversation ${id} does not exist.`);
    return conversation;
  }

  return {
    'inbox.listConversations': ({ filter, cursor, limit }, { me, concerns }) => {
      const page = listConversations(db, {
        filter: filter === 'mine' ? { kind: 'assigned', userId: me.userId } : { kind: filter },
        limit,
        cursor: cursor ?? null,
      });
      for (const item of page.items) concerns(item.contactId);
      const unread = db.prepare('SELECT count(*) AS n FROM conversations WHERE unread_count > 0').get() as { n: number };
      return { items: page.items.map(toSummary), nextCursor: page.nextCursor, unreadTotal: unread.n };
    },

    'conversations.get': ({ conversationId }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const contact = getContact(db, conversation.contactId);
      if (!contact) throw new CodedError('NOT_FOUND', `Contact ${conversation.contactId} does not exist.`);
      const window = customerServiceWindow(conversation.lastInboundAt, now());
      return {
        conversation: toSummary(conversation),
        contact: toContact(contact),
        window: { open: window.open, closesAt: window.closesAt },
      };
    },

    'messages.list': ({ conversationId, before, limit }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const page = listThread(db, { conversationId, limit, cursor: before ?? null });
      return { items: page.items.map((m) => toMessageView(m, conversationId)), nextCursor: page.nextCursor };
    },

    'messages.send': ({ conversationId, text, replyToMessageId }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const messageId = whatsapp.sendText({
        conversationId,
        text,
        userId: ctx.me.userId,
        ...(replyToMessageId ? { replyToMessageId } : {}),
      });
      emit('conversation.updated', { conversationId });
      return { messageId };
    },

    // Asynchronous: the answer waits for the file's commit, which runs beside the event loop while
    // the outbox already uploads it (see media/outboundFiles.ts); the message's rows commit first,
    // with this call's audit entry.
    'messages.sendMedia': async ({ conversationId, dataBase64, mimeType, filename, caption, replyToMessageId }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const messageId = await whatsapp.sendMedia({
        conversationId,
        bytes: decodeFileBase64(dataBase64),
        mimeType,
        userId: ctx.me.userId,
        commit: ctx.commitWithAudit,
        ...(filename ? { filename } : {}),
        ...(caption ? { caption } : {}),
        ...(replyToMessageId ? { replyToMessageId } : {}),
      });
      emit('conversation.updated', { conversationId });
      return { messageId };
    },

    'messages.sendTemplate': ({ conversationId, name, language, parameters }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const messageId = whatsapp.sendTemplate({ conversationId, name, language, parameters, userId: ctx.me.userId });
      emit('conversation.updated', { conversationId });
      return { messageId };
    },

    'messages.react': ({ conversationId, messageId, emoji }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      const queued = whatsapp.react({ conversationId, messageId, emoji, userId: ctx.me.userId });
      if (queued) emit('message.updated', { conversationId, messageId });
      return { queued };
    },

    'conversations.markRead': ({ conversationId }, ctx) => {
      const conversation = conversationOrThrow(conversationId);
      ctx.concerns(conversation.contactId);
      if (markConversationRead(db, conversationId, now())) {
        whatsapp.markRead(conversationId);
        emit('conversation.updated', { conversationId });
      }
      return {};
    },

    'conversations.markUnread': ({ conversationId }, ctx) => {
      ctx.concerns(conversationOrThrow(conversationId).contactId);
      if (markConversationUnread(db, conversationId, now())) emit('conversation.updated', { conversationId });
      return {};
    },

    'conversations.setStatus': ({ conversationId, status }, ctx) => {
      ctx.concerns(conversationOrThrow(conversationId).contactId);
      setConversationStatus(db, conversationId, status, now());
      emit('conversation.updated', { conversationId });
      return {};
    },

    'conversations.assign': ({ conversationId, toMe }, ctx) => {
      ctx.concerns(conversationOrThrow(conversationId).contactId);
      assignConversation(db, conversationId, toMe ? ctx.me.userId : null, now());
      emit('conversation.updated', { conversationId });
      return {};
    },

    'search.messages': ({ query, cursor, limit }, ctx) => {
      const page = searchMessages(db, { query, limit, cursor: cursor ?? null });
      const contacts = db.prepare('SELECT contact_id FROM conversations WHERE id = ?');
      for (const hit of page.items) {
        const row = contacts.get(hit.conversationId) as { contact_id: number } | undefined;
        if (row) ctx.concerns(row.contact_id);
      }
      return {
        items: page.items.map((hit) => ({
          messageId: hit.messageId,
          conversationId: hit.conversationId,
          contactName: hit.contactName,
          snippet: hit.snippet.map((s) => (s.match ? `${HIGHLIGHT_START}${s.text}${HIGHLIGHT_END}` : s.text)).join(''),
          at: hit.sentAt,
        })),
        nextCursor: page.nextCursor,
      };
    },

    'search.contacts': ({ query, limit }, ctx) => {
      const hits = searchContacts(db, query, limit);
      for (const hit of hits) ctx.concerns(hit.contactId);
      return {
        items: hits.map(({ notes, ...hit }) => ({ ...hit, snippet: notes ? `${notes[0]}${HIGHLIGHT_START}${notes[1]}${HIGHLIGHT_END}${notes[2]}` : null })),
      };
    },

    'contacts.get': ({ contactId }, ctx) => {
      const contact = getContact(db, contactId);
      if (!contact) throw new CodedError('NOT_FOUND', `Contact ${contactId} does not exist.`);
      ctx.concerns(contactId);
      return toContact(contact);
    },

    'contacts.update': ({ contactId, displayName, notes }, ctx) => {
      ctx.concerns(contactId);
      const updated = updateContact(
        db,
        contactId,
        { ...(displayName !== undefined ? { displayName } : {}), ...(notes !== undefined ? { notes } : {}) },
        now(),
      );
      return toContact(updated);
    },

    'media.get': ({ mediaId }, ctx) => {
      const media = whatsapp.getMedia(mediaId);
      ctx.concerns(media.contactId);
      return { mimeType: media.mimeType, filename: media.filename, dataBase64: media.data.toString('base64') };
    },

    'quickReplies.list': () => listQuickReplies(db).map(toQuickReply),
    'quickReplies.add': ({ text }, { me }) => {
      const { reply, created } = addQuickReply(db, { text, userId: me.userId }, now());
      if (created) emit('quickReplies.changed', {});
      return { reply: toQuickReply(reply), created };
    },
    'quickReplies.remove': ({ id }) => {
      const removed = removeQuickReply(db, id);
      if (removed) emit('quickReplies.changed', {});
      return { removed };
    },

    'templates.list': () => whatsapp.listTemplates(),
    'templates.sync': async () => ({ count: await whatsapp.syncTemplates() }),
    'relay.status': () => link.status(),
    'whatsapp.status': () => whatsapp.status(),

    'whatsapp.account': async () => {
      const pairing = link.pairing();
      const account = await whatsapp.account();
      return { tenantId: pairing?.tenantId ?? null, relayUrl: pairing?.relayUrl ?? null, ...account };
    },

    'recovery.status': () => recovery.status(),
    'recovery.create': ({ replace }, ctx) => {
      // The console prints the key to the operator who asked for it: nothing to confirm there.
      const { recoveryKey, createdAt, save } = recovery.create(replace, ctx.me.userId === 'console');
      ctx.afterCommit(save);
      return { recoveryKey, createdAt };
    },
    'recovery.confirm': ({ createdAt }) => ({ confirmed: recovery.confirm(createdAt) }),
    'recovery.restore': () => {
      throw new CodedError('CONFLICT', "This computer's keychain already opens the database; there is nothing to restore.");
    },

    'setup.pair': async ({ relayUrl, code }) => {
      const pairing = await link.pair(relayUrl, code);
      return { tenantId: pairing.tenantId, applianceId: pairing.applianceId, phoneNumberIds: pairing.phoneNumberIds };
    },

    'setup.whatsapp': ({ wabaId, accessToken, graphBaseUrl, appSecret, requireMetaSignature }) =>
      whatsapp.configure({
        wabaId,
        accessToken,
        ...(graphBaseUrl ? { graphBaseUrl } : {}),
        ...(appSecret !== undefined ? { appSecret } : {}),
        ...(requireMetaSignature !== undefined ? { requireMetaSignature } : {}),
      }),
  };

  function toMessageView(m: ThreadMessage, conversationId: number): MessageView {
    const replied = m.contextWamid ? getMessageByWamid(db, m.contextWamid) : null;
    const deleted = m.revokedAt !== null;
    // What the desk sent is stored in its own request shape (shown by text and media); what Meta
    // delivered (the patient's messages, echoes from the clinic's phone, call lines) has Meta's shapes.
    const metaShaped = m.direction === 'inbound' || m.origin === 'phone' || m.type === 'call';
    const shape = deleted || !metaShaped ? { detail: null, referral: null } : presentMessage(m.type, m.content);
    return {
      id: m.id,
      wamid: m.wamid,
      conversationId,
      direction: m.direction === 'inbound' ? 'in' : 'out',
      type: m.type,
      text: m.text,
      media: m.mediaId && !deleted ? whatsapp.mediaRef(m.id, m.mediaId) : null,
      replyTo: m.contextWamid
        ? { messageId: replied?.id ?? null, wamid: m.contextWamid, preview: replied?.text?.slice(0, 160) ?? null }
        : null,
      reactions: m.reactions.map((r) => ({
        emoji: r.emoji,
        direction: r.fromBusiness ? 'out' : 'in',
        ...(r.status ? { status: r.status, error: r.errorTitle ?? null } : {}),
      })),
      status: m.status as MessageView['status'],
      error: m.error ? { code: m.error.code, title: m.error.title ?? 'Failed' } : null,
      at: m.sentAt,
      detail: shape.detail,
      referral: shape.referral,
      edited: m.editedAt !== null && !deleted,
      deleted,
      fromPhone: m.origin === 'phone',
    };
  }
}

function toSummary(c: ConversationListItem): ConversationSummary {
  return {
    id: c.id,
    contact: { id: c.contactId, displayName: c.contactName, profileName: null, waId: c.waId },
    phoneNumberId: c.phoneNumberId,
    status: c.status,
    assignedTo: c.assignedUserId,
    unreadCount: c.unreadCount,
    lastMessageAt: c.lastActivityAt,
    lastMessagePreview: c.lastMessage?.preview ?? (c.lastMessage ? `[${c.lastMessage.type}]` : null),
    lastMessageDirection: c.lastMessage ? (c.lastMessage.direction === 'inbound' ? 'in' : 'out') : null,
  };
}

function toQuickReply(r: QuickReplyRow): QuickReply {
  return { id: r.id, text: r.text, createdBy: r.created_by, createdAt: r.created_at };
}

function toContact(c: ContactRow): Contact {
  return {
    id: c.id,
    waId: c.wa_id,
    businessScopedUserId: c.user_id,
    profileName: c.profile_name,
    displayName: c.display_name,
    notes: c.notes,
  };
}
