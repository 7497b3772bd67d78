import type { MessageDetail, MessageView, ReferralView } from '../../../shared/rpc';
import { useI18n, type Strings } from '../i18n';

/** The kinds whose detail says all the text says (title, answers, names), so the text is not shown twice. */
export const DETAIL_REPLACES_TEXT: ReadonlySet<MessageDetail['kind']> = new Set(['location', 'reply', 'form', 'contacts', 'callPermission']);

/** "Came from your ad: …" above a message that started from a Click-to-WhatsApp ad or post. */
export function ReferralHeader({ referral }: { referral: ReferralView }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <div className="msg-referral" data-testid="referral">
      <strong>{referral.headline ? t.msgReferral(referral.headline) : t.msgReferralNoHeadline}</strong>
      {referral.body ? <span className="small">{referral.body}</span> : null}
      {referral.sourceType ? <span className="small muted">{t.msgReferralSource(referral.sourceType)}</span> : null}
    </div>
  );
}

const coordinate = (n: number) => n.toFixed(5);

/** What a message holds beyond its text, each shape in its own presentation. */
export function MessageDetailView({ detail }: { detail: MessageDetail }): React.JSX.Element | null {
  const { t } = useI18n();
  switch (detail.kind) {
    case 'location':
      return (
        <div className="msg-detail msg-location" data-testid="location">
          <span className="msg-pin" aria-hidden="true">📍</span>
          <div>
            <strong>{detail.name ?? t.msgLocation}</strong>
            {detail.address ? <span className="msg-detail-line">{detail.address}</span> : null}
            <span className="msg-detail-line small muted">{t.msgCoordinates(coordinate(detail.latitude), coordinate(detail.longitude))}</span>
            {/* Opened by the shell only when its host is on the external-link allowlist. */}
            <a className="msg-detail-line" href={detail.mapsUrl} target="_blank" rel="noopener noreferrer">
              {t.msgOpenInMaps}
            </a>
          </div>
        </div>
      );
    case 'contacts':
      return (
        <ul className="msg-detail msg-cards" aria-label={t.msgContactCard}>
          {detail.cards.map((c, i) => (
            <li key={i} className="msg-card">
              <span aria-hidden="true">👤 </span>
              <strong>{c.name ?? t.msgContactCard}</strong>
              {c.organisation ? <span className="msg-detail-line small">{c.organisation}</span> : null}
              {c.phones.map((p) => (
                <span key={p} className="msg-detail-line">{p}</span>
              ))}
              {c.emails.map((e) => (
                <span key={e} className="msg-detail-line small">{e}</span>
              ))}
            </li>
          ))}
        </ul>
      );
    case 'reply':
      return (
        <div className="msg-detail msg-reply-choice">
          <span className="small muted">{detail.replyKind === 'list' ? t.msgReplyList : detail.replyKind === 'template' ? t.msgReplyTemplate : t.msgReplyButton}</span>
          <span className="msg-choice">{detail.title}</span>
          {detail.description ? <span className="msg-detail-line small">{detail.description}</span> : null}
        </div>
      );
    case 'form':
      return (
        <div className="msg-detail msg-form">
          <span className="small muted">{t.msgForm}</span>
          {detail.answers.length === 0 ? (
            <span className="msg-detail-line">{t.msgFormEmpty}</span>
          ) : (
            <dl>
              {detail.answers.map((a, i) => (
                <div key={i} className="msg-form-row">
                  <dt>{a.label}</dt>
                  <dd>{a.value}</dd>
                </div>
              ))}
            </dl>
          )}
        </div>
      );
    case 'callPermission':
      return (
        <div className="msg-detail">
          <span aria-hidden="true">{detail.accepted ? '📞 ' : '🚫 '}</span>
          <strong>{detail.accepted ? t.msgCallPermissionYes : t.msgCallPermissionNo}</strong>
          {detail.accepted && detail.permanent !== null ? <span className="small muted"> ({detail.permanent ? t.msgCallPermissionPermanent : t.msgCallPermissionTemporary})</span> : null}
        </div>
      );
    case 'order':
      return <OrderView detail={detail} />;
    case 'sticker':
      return <span className="msg-kind small muted">{detail.animated ? t.msgStickerAnimated : t.msgSticker}</span>;
    case 'audio':
      return <span className="msg-kind small muted">{detail.voice ? `🎤 ${t.msgVoice}` : `🎵 ${t.msgAudio}`}</span>;
    case 'video':
      return <span className="msg-kind small muted">🎬 {t.msgVideo}</span>;
    case 'document':
      return <span className="msg-kind small muted">📄 {t.msgDocument}</span>;
    case 'unsupported':
      return <p className="msg-text muted" data-testid="cannot-show">{t.msgCannotShow(detail.metaType)}</p>;
    case 'call':
      return null;
  }
}

function OrderView({ detail }: { detail: Extract<MessageDetail, { kind: 'order' }> }): React.JSX.Element {
  const { t, lang: locale } = useI18n();
  const money = (price: number | null, currency: string | null) => {
    if (price === null) return '—';
    try {
      return currency ? new Intl.NumberFormat(locale, { style: 'currency', currency }).format(price) : String(price);
    } catch {
      return `${price} ${currency ?? ''}`.trim();
    }
  };
  return (
    <div className="msg-detail msg-order" data-testid="order">
      <strong>🛒 {t.msgOrder}</strong>
      {detail.catalogId ? <span className="msg-detail-line small muted">{t.msgOrderCatalog(detail.catalogId)}</span> : null}
      <table className="msg-order-items">
        <thead>
          <tr>
            <th scope="col">{t.msgOrderItem}</th>
            <th scope="col">{t.msgOrderQuantity}</th>
            <th scope="col">{t.msgOrderPrice}</th>
          </tr>
        </thead>
        <tbody>
          {detail.items.map((item, i) => (
            <tr key={i}>
              <td>{item.retailerId ?? '—'}</td>
              <td>{item.quantity ?? '—'}</td>
              <td>{money(item.price, item.currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function duration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m > 0 ? `${m}:${String(s).padStart(2, '0')} min` : `${s} s`;
}

export function callText(t: Strings, detail: Extract<MessageDetail, { kind: 'call' }>): string {
  switch (detail.outcome) {
    case 'answered':
      return t.callAnswered(duration(detail.durationSeconds ?? 0));
    case 'missed':
      return t.callMissed;
    case 'rejected':
      return t.callRejected;
    case 'failed':
      return t.callFailed;
    case 'accepted':
      return t.callAccepted;
    case 'ringing':
      return detail.direction === 'in' ? t.callIncoming : t.callOutgoing;
  }
}

/** A call is a line in the thread, not a bubble. */
export function CallLine({ message, detail }: { message: MessageView; detail: Extract<MessageDetail, { kind: 'call' }> }): React.JSX.Element {
  const { t, formatTime } = useI18n();
  return (
    <li className={`msg-line call ${detail.outcome}`} data-message-id={message.id} data-testid="call-line">
      <span aria-hidden="true">{detail.outcome === 'missed' ? '📵' : '📞'} </span>
      <span>{callText(t, detail)}</span> · <time dateTime={new Date(message.at).toISOString()}>{formatTime(message.at)}</time>
    </li>
  );
}
