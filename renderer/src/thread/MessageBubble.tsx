import { useEffect, useRef, useState } from 'react';
import type { MessageStatus, MessageView } from '../../../shared/rpc';
import { useI18n, type Strings } from '../i18n';
import { useRpc } from '../rpc';
import { CallLine, DETAIL_REPLACES_TEXT, MessageDetailView, ReferralHeader } from './MessageShapes';

export function statusText(t: Strings, status: MessageStatus): string {
  const map: Record<MessageStatus, string> = {
    pending: t.statusPending,
    sent: t.statusSent,
    delivered: t.statusDelivered,
    read: t.statusRead,
    played: t.statusPlayed,
    failed: t.statusFailed,
    received: '',
  };
  return map[status];
}

// Plain characters every system font has; colour and the label carry the rest.
const TICKS: Record<MessageStatus, string> = { pending: '…', sent: '✓', delivered: '✓✓', read: '✓✓', played: '✓✓', failed: '!', received: '' };

interface Props {
  message: MessageView;
  highlighted: boolean;
  onReply(message: MessageView): void;
  /** The clinic's reaction to this message (empty: remove it). */
  onReact(message: MessageView, emoji: string): void;
  onJumpTo(messageId: number): void;
}

/** The reactions the desk offers, as WhatsApp's own quick row does. */
export const REACTION_CHOICES = ['👍', '❤️', '😂', '😮', '😢', '🙏'] as const;

/** What WhatsApp lets the clinic react to: the patient's own messages (the core checks age and window). */
function reactable(m: MessageView): boolean {
  return m.direction === 'in' && m.wamid !== null && !m.deleted && m.type !== 'system' && m.detail?.kind !== 'call';
}

export function MessageBubble({ message: m, highlighted, onReply, onReact, onJumpTo }: Props): React.JSX.Element {
  const { t, formatTime } = useI18n();
  const mine = m.direction === 'out';
  const failedTitle = m.status === 'failed' ? t.failedReason(m.error?.title ?? t.errorGeneric) : statusText(t, m.status);
  const detail = m.detail ?? null;
  if (detail?.kind === 'call') return <CallLine message={m} detail={detail} />;
  const showText = m.text && !(detail && DETAIL_REPLACES_TEXT.has(detail.kind));
  // Never an empty bubble: a message with nothing to show says what it is.
  const nothing = !m.deleted && !m.media && !showText && !detail;
  return (
    <li
      className={`msg ${mine ? 'out' : 'in'}${highlighted ? ' highlighted' : ''}${m.deleted ? ' deleted' : ''}`}
      data-message-id={m.id}
      data-status={m.status}
      data-type={m.type}
    >
      <div className="bubble">
        <span className="visually-hidden">{mine ? t.clinic : t.patient}: </span>
        {m.referral ? <ReferralHeader referral={m.referral} /> : null}
        {m.replyTo ? (
          <button
            type="button"
            className="quote"
            disabled={m.replyTo.messageId === null}
            onClick={() => m.replyTo?.messageId && onJumpTo(m.replyTo.messageId)}
          >
            <span className="visually-hidden">{t.replyingTo}: </span>
            <bdi>{m.replyTo.preview ?? '…'}</bdi>
          </button>
        ) : null}
        {m.deleted ? <p className="msg-text muted msg-deleted">🚫 {t.msgDeleted}</p> : null}
        {m.media ? <Media message={m} /> : null}
        {detail ? <MessageDetailView detail={detail} /> : null}
        {m.type === 'template' && mine ? (
          <span className="msg-template" data-testid="template-marker">
            {t.msgTemplateSent}
          </span>
        ) : null}
        {showText ? (
          <p className="msg-text" dir="auto">
            {m.text}
          </p>
        ) : null}
        {nothing ? <p className="msg-text muted" data-testid="cannot-show">{t.msgCannotShow(m.type)}</p> : null}
        <span className="msg-meta">
          {m.fromPhone ? <span className="msg-from-phone">📱 {t.msgFromPhone} · </span> : null}
          {m.edited ? <span className="msg-edited">{t.msgEdited} · </span> : null}
          <time dateTime={new Date(m.at).toISOString()}>{formatTime(m.at)}</time>
          {mine ? (
            <span className={`ticks ${m.status}`} title={failedTitle} aria-label={failedTitle} role="img" data-testid="ticks">
              {TICKS[m.status]}
            </span>
          ) : null}
        </span>
        {m.status === 'failed' ? <span className="msg-failed">{failedTitle}</span> : null}
        <ReactionState message={m} />
      </div>
      {m.reactions.some((r) => r.emoji !== '') ? (
        <ul className="reactions" aria-label={t.reactions}>
          {m.reactions
            .filter((r) => r.emoji !== '')
            .map((r, i) => (
              <li
                key={i}
                className={r.status ? `reaction-${r.status}` : undefined}
                data-testid={r.direction === 'out' ? 'clinic-reaction' : undefined}
                data-status={r.status}
                title={r.status === 'pending' ? t.reactionPending : t.reactedWith(r.emoji, r.direction === 'in' ? t.patient : t.clinic)}
              >
                {r.emoji}
              </li>
            ))}
        </ul>
      ) : null}
      <span className="msg-actions">
        <button type="button" className="msg-reply" onClick={() => onReply(m)} aria-label={`${t.reply}: ${formatTime(m.at)}`}>
          ↩
        </button>
        {reactable(m) ? <ReactionPicker message={m} onReact={onReact} /> : null}
      </span>
    </li>
  );
}

/** The clinic's own reaction while it is being sent, and why it failed. */
function ReactionState({ message: m }: { message: MessageView }): React.JSX.Element | null {
  const { t, errorText } = useI18n();
  const mine = m.reactions.find((r) => r.direction === 'out' && r.status !== undefined);
  if (mine?.status === 'failed') {
    return (
      <p className="reaction-note failed" data-testid="reaction-failed">
        {t.reactionFailed(mine.error ?? errorText(null))}
      </p>
    );
  }
  if (mine?.status === 'pending' && mine.emoji === '') return <p className="reaction-note muted">{t.reactionRemoving}</p>;
  return null;
}

/**
 * A button on each of the patient's bubbles that opens a row of emoji (each a button; the current
 * one pressed, choosing it again removes it). Escape closes the row and returns to the button.
 */
function ReactionPicker({ message: m, onReact }: { message: MessageView; onReact(message: MessageView, emoji: string): void }): React.JSX.Element {
  const { t, formatTime } = useI18n();
  const [open, setOpen] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const row = useRef<HTMLDivElement>(null);
  const current = m.reactions.find((r) => r.direction === 'out')?.emoji ?? '';
  useEffect(() => {
    if (open) row.current?.querySelector('button')?.focus();
  }, [open]);
  const close = (refocus: boolean): void => {
    setOpen(false);
    if (refocus) toggle.current?.focus();
  };
  const choose = (emoji: string): void => {
    onReact(m, emoji);
    close(true);
  };
  return (
    <span className="msg-react-wrap">
      <button
        ref={toggle}
        type="button"
        className="msg-react"
        aria-expanded={open}
        aria-label={`${t.react}: ${formatTime(m.at)}`}
        data-testid="react-button"
        onClick={() => setOpen((o) => !o)}
      >
        ☺
      </button>
      {open ? (
        <div
          ref={row}
          className="reaction-picker"
          role="group"
          aria-label={t.chooseReaction}
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              e.stopPropagation();
              close(true);
            }
          }}
          onBlur={(e) => {
            if (!e.currentTarget.contains(e.relatedTarget as Node | null) && e.relatedTarget !== toggle.current) close(false);
          }}
        >
          {REACTION_CHOICES.map((emoji) => (
            <button key={emoji} type="button" aria-pressed={current === emoji} aria-label={t.reactWith(emoji)} onClick={() => choose(current === emoji ? '' : emoji)}>
              {emoji}
            </button>
          ))}
          {current !== '' ? (
            <button type="button" className="secondary" onClick={() => choose('')}>
              {t.removeReaction}
            </button>
          ) : null}
        </div>
      ) : null}
    </span>
  );
}

function Media({ message: m }: { message: MessageView }): React.JSX.Element {
  const { t } = useI18n();
  const media = m.media!;
  if (media.state === 'pending' || media.state === 'downloading') return <p className="media-note">{t.mediaPending}</p>;
  if (media.state === 'too_large') return <p className="media-note">{t.mediaTooLarge}</p>;
  if (media.state === 'failed') return <p className="media-note">{t.mediaUnavailable}</p>;
  if (m.type === 'image' || m.type === 'sticker') return <InlineImage mediaId={media.id} alt={m.text ?? t.imageAlt} />;
  if (m.type === 'audio') return <InlineAudio mediaId={media.id} filename={media.filename} size={media.size} />;
  return <DownloadButton mediaId={media.id} filename={media.filename} size={media.size} />;
}

/** Fetches a stored file through `media.get` and keeps it as a blob URL for this view only. */
function useBlobUrl(mediaId: number, enabled: boolean): { url: string | null; filename: string | null; error: boolean } {
  const rpc = useRpc();
  const [state, setState] = useState<{ url: string | null; filename: string | null; error: boolean }>({ url: null, filename: null, error: false });
  useEffect(() => {
    if (!enabled) return;
    let url: string | null = null;
    let cancelled = false;
    rpc.call('media.get', { mediaId }).then(
      (file) => {
        if (cancelled) return;
        const bytes = Uint8Array.from(atob(file.dataBase64), (c) => c.charCodeAt(0));
        url = URL.createObjectURL(new Blob([bytes], { type: file.mimeType }));
        setState({ url, filename: file.filename, error: false });
      },
      () => !cancelled && setState({ url: null, filename: null, error: true }),
    );
    return () => {
      cancelled = true;
      if (url) URL.revokeObjectURL(url);
    };
  }, [rpc, mediaId, enabled]);
  return state;
}

function InlineImage({ mediaId, alt }: { mediaId: number; alt: string }): React.JSX.Element {
  const { t } = useI18n();
  const { url, error } = useBlobUrl(mediaId, true);
  if (error) return <p className="media-note">{t.mediaUnavailable}</p>;
  if (!url) return <div className="media-placeholder" aria-label={t.loading} />;
  return <img className="media-image" src={url} alt={alt} />;
}

/** Voice messages play in place; the bytes are fetched only when someone presses play. */
function InlineAudio({ mediaId, filename, size }: { mediaId: number; filename: string | null; size: number | null }): React.JSX.Element {
  const { t } = useI18n();
  const [wanted, setWanted] = useState(false);
  const { url, error } = useBlobUrl(mediaId, wanted);
  if (error) return <p className="media-note">{t.mediaUnavailable}</p>;
  if (url) return <audio className="media-audio" src={url} controls autoPlay aria-label={t.playVoiceNote} />;
  return (
    <span className="media-audio-actions">
      <button type="button" className="media-file" onClick={() => setWanted(true)} disabled={wanted}>
        ▶ {t.playVoiceNote}
      </button>
      <DownloadButton mediaId={mediaId} filename={filename} size={size} />
    </span>
  );
}

function DownloadButton({ mediaId, filename, size }: { mediaId: number; filename: string | null; size: number | null }): React.JSX.Element {
  const { t } = useI18n();
  const [wanted, setWanted] = useState(false);
  const { url, error } = useBlobUrl(mediaId, wanted);
  const name = filename ?? t.attachment;
  const sizeText = size ? ` · ${formatSize(size)}` : '';
  useEffect(() => {
    if (!url) return;
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.click();
  }, [url, name]);
  if (error) return <p className="media-note">{t.mediaUnavailable}</p>;
  return (
    <button type="button" className="media-file" onClick={() => setWanted(true)}>
      {t.download}: {name}
      {sizeText}
    </button>
  );
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
