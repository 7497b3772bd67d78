import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Fragment, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { ConversationStatus, MessageView } from '../../../shared/rpc';
import { flattenMessages, keys, useConversation, useMessages, useWhoami } from '../data/queries';
import { useI18n } from '../i18n';
import { contactLabel, ErrorState } from '../inbox';
import { markPainted } from '../perf/marks';
import { BookButton } from '../booking';
import { useRpc } from '../rpc';
import { Composer } from './Composer';
import { MessageBubble } from './MessageBubble';

interface Props {
  conversationId: number;
  /** A message to scroll to and mark (from a search hit). */
  focusMessageId: number | null;
  contactOpen: boolean;
  onToggleContact(): void;
  /** Leave the conversation (after "Mark as unread", which an open thread would undo at once). */
  onLeave?(): void;
}

export function ThreadView({ conversationId, focusMessageId, contactOpen, onToggleContact, onLeave }: Props): React.JSX.Element {
  const { t } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const conv = useConversation(conversationId);
  const whoami = useWhoami();
  const [replyTo, setReplyTo] = useState<MessageView | null>(null);
  const cancelReply = useCallback(() => setReplyTo(null), []);
  useEffect(() => setReplyTo(null), [conversationId]);

  const unread = conv.data?.conversation.unreadCount ?? 0;
  useEffect(() => {
    if (unread > 0)
      void rpc.call('conversations.markRead', { conversationId }).then(() => qc.invalidateQueries({ queryKey: keys.allConversations }));
  }, [rpc, qc, conversationId, unread]);

  const update = useMutation({
    mutationFn: async (change: { status: ConversationStatus } | { toMe: boolean }) => {
      if ('status' in change) await rpc.call('conversations.setStatus', { conversationId, status: change.status });
      else await rpc.call('conversations.assign', { conversationId, toMe: change.toMe });
    },
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: keys.conversation(conversationId) });
      void qc.invalidateQueries({ queryKey: keys.allConversations });
    },
  });

  // A resolved conversation the patient wrote to again (the core reopens it) says so while it is open here.
  const status = conv.data?.conversation.status;
  const lastIn = conv.data?.conversation.lastMessageDirection === 'in';
  const seenStatus = useRef<{ id: number; status: ConversationStatus } | null>(null);
  const [reopened, setReopened] = useState(false);
  useEffect(() => {
    if (!status) return;
    const seen = seenStatus.current;
    if (seen?.id !== conversationId) setReopened(false);
    else if (seen.status === 'resolved' && status === 'open' && lastIn) setReopened(true);
    else if (status !== 'open') setReopened(false);
    seenStatus.current = { id: conversationId, status };
  }, [conversationId, status, lastIn]);

  const markUnread = useMutation({
    mutationFn: () => rpc.call('conversations.markUnread', { conversationId }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: keys.allConversations });
      onLeave?.();
    },
  });

  if (conv.isPending) return <main className="thread"><p className="state">{t.loading}</p></main>;
  if (conv.isError) return <main className="thread"><ErrorState error={conv.error} onRetry={() => void conv.refetch()} /></main>;
  const { conversation, contact, window: win } = conv.data;
  const label = contactLabel(contact, t.unknownContact);
  const mine = whoami.data?.signedIn === true && conversation.assignedTo === whoami.data.userId;

  return (
    <main className="thread" aria-label={label} data-testid="thread">
      <header className="thread-header">
        <h2 title={label}>{label}</h2>
        <div className="thread-tools">
          <span className="assigned small muted">
            {mine ? t.assignedToYou : conversation.assignedTo ? t.assignedTo(conversation.assignedTo) : ''}
          </span>
          <button type="button" className="secondary" onClick={() => update.mutate({ toMe: !mine })}>
            {mine ? t.unassign : t.assignToMe}
          </button>
          <label htmlFor="conv-status" className="visually-hidden">
            {t.statusLabel}
          </label>
          <select id="conv-status" value={conversation.status} onChange={(e) => update.mutate({ status: e.target.value as ConversationStatus })}>
            <option value="open">{t.convOpen}</option>
            <option value="pending">{t.convPending}</option>
            <option value="resolved">{t.convResolved}</option>
          </select>
          <button type="button" className="secondary" disabled={markUnread.isPending} onClick={() => markUnread.mutate()}>
            {t.markUnread}
          </button>
          <button type="button" className="secondary" aria-expanded={contactOpen} aria-controls="contact-panel" onClick={onToggleContact}>
            {t.contactPanel}
          </button>
          <BookButton conversationId={conversationId} />
        </div>
      </header>
      {reopened ? (
        <p className="banner info" role="status" data-testid="reopened">
          {t.reopenedNote}
        </p>
      ) : null}
      <MessageList conversationId={conversationId} focusMessageId={focusMessageId} onReply={setReplyTo} />
      <Composer conversationId={conversationId} window={win} replyTo={replyTo} onCancelReply={cancelReply} />
    </main>
  );
}

function MessageList({ conversationId, focusMessageId, onReply }: { conversationId: number; focusMessageId: number | null; onReply(m: MessageView): void }): React.JSX.Element {
  const { t, formatDay, errorText } = useI18n();
  const rpc = useRpc();
  const reactTo = useMutation({
    mutationFn: ({ messageId, emoji }: { messageId: number; emoji: string }) => rpc.call('messages.react', { conversationId, messageId, emoji }),
  });
  const { mutate: sendReaction } = reactTo;
  const onReact = useCallback((m: MessageView, emoji: string) => sendReaction({ messageId: m.id, emoji }), [sendReaction]);
  const messages = useMessages(conversationId);
  const items = flattenMessages(messages.data?.pages);
  const scrollRef = useRef<HTMLDivElement>(null);
  const stickToBottom = useRef(true);
  const [flash, setFlash] = useState<number | null>(null);
  const newest = items[items.length - 1]?.id;
  // Messages that arrived while the reader was scrolled up: counted on the "new messages ↓" pill.
  const [unseen, setUnseen] = useState(0);
  const seenNewest = useRef<number | undefined>(undefined);
  const ready = !messages.isPending;
  useEffect(() => {
    if (ready) markPainted(`thread:${conversationId}`);
  }, [ready, conversationId]);

  useLayoutEffect(() => {
    stickToBottom.current = true;
  }, [conversationId]);
  // Follow new messages only when the reader is already at the bottom: never yank them away from history.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
    if (stickToBottom.current || seenNewest.current === undefined) {
      seenNewest.current = newest;
      setUnseen(0);
    } else if (newest !== seenNewest.current) {
      const after = items.findIndex((m) => m.id === seenNewest.current);
      setUnseen(after >= 0 ? items.length - 1 - after : 1);
    }
  }, [newest, items]);
  const toBottom = (): void => {
    const el = scrollRef.current;
    if (el) el.scrollTop = el.scrollHeight;
    stickToBottom.current = true;
    seenNewest.current = newest;
    setUnseen(0);
  };
  // R replies to the focused message (the bubble's own reply button does the same).
  const onKeyDown = (e: React.KeyboardEvent): void => {
    if (e.key !== 'r' && e.key !== 'R') return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const li = (e.target as HTMLElement).closest?.('[data-message-id]');
    const m = li ? items.find((x) => String(x.id) === li.getAttribute('data-message-id')) : items[items.length - 1];
    if (m) {
      e.preventDefault();
      onReply(m);
    }
  };

  const jumpTo = useCallback((messageId: number) => {
    const el = scrollRef.current?.querySelector(`[data-message-id="${messageId}"]`);
    if (el) {
      el.scrollIntoView({ block: 'center' });
      setFlash(messageId);
      stickToBottom.current = false;
    }
  }, []);
  useEffect(() => {
    if (focusMessageId !== null && items.some((m) => m.id === focusMessageId)) jumpTo(focusMessageId);
  }, [focusMessageId, items, jumpTo]);

  if (messages.isPending) return <div className="messages"><p className="state">{t.loading}</p></div>;
  if (messages.isError) return <div className="messages"><ErrorState error={messages.error} onRetry={() => void messages.refetch()} /></div>;

  let lastDay = '';
  return (
    <div
      className="messages"
      ref={scrollRef}
      tabIndex={0}
      aria-label={t.thread}
      onKeyDown={onKeyDown}
      onScroll={(e) => {
        const el = e.currentTarget;
        stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        if (stickToBottom.current && unseen > 0) {
          seenNewest.current = newest;
          setUnseen(0);
        }
      }}
    >
      {unseen > 0 ? (
        <button type="button" className="new-messages-pill" data-testid="new-messages-pill" onClick={toBottom}>
          {t.newMessagesPill(unseen)}
        </button>
      ) : null}
      {messages.hasNextPage ? (
        <button type="button" className="load-older secondary" disabled={messages.isFetchingNextPage} onClick={() => void messages.fetchNextPage()}>
          {messages.isFetchingNextPage ? t.loading : t.loadOlder}
        </button>
      ) : null}
      {reactTo.isError ? (
        <p className="banner error reaction-error" role="alert" data-testid="reaction-error">
          {errorText(reactTo.error)}
        </p>
      ) : null}
      {items.length === 0 ? <p className="state">{t.noMessages}</p> : null}
      <ol className="message-list">
        {items.map((m) => {
          const day = formatDay(m.at);
          const separator = day !== lastDay;
          lastDay = day;
          return (
            <Fragment key={m.id}>
              {separator ? (
                <li className="day-separator" aria-hidden="false">
                  <span>{day}</span>
                </li>
              ) : null}
              <MessageBubble message={m} highlighted={m.id === flash} onReply={onReply} onReact={onReact} onJumpTo={jumpTo} />
            </Fragment>
          );
        })}
      </ol>
    </div>
  );
}
