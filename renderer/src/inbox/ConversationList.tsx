import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef } from 'react';
import type { ConversationSummary } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { contactLabel, initials } from './names';

interface Props {
  items: ConversationSummary[];
  selectedId: number | null;
  onSelect(id: number): void;
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore(): void;
}

const ROW_HEIGHT = 68;

export function ConversationList({ items, selectedId, onSelect, hasMore, loadingMore, onLoadMore }: Props): React.JSX.Element {
  const { t, formatWhen } = useI18n();
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: items.length + (hasMore ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
  });
  const virtualItems = virtualizer.getVirtualItems();
  const last = virtualItems[virtualItems.length - 1];

  useEffect(() => {
    if (last && last.index >= items.length - 1 && hasMore && !loadingMore) onLoadMore();
  }, [last, items.length, hasMore, loadingMore, onLoadMore]);

  const selectedIndex = items.findIndex((c) => c.id === selectedId);
  useEffect(() => {
    if (selectedIndex >= 0) virtualizer.scrollToIndex(selectedIndex, { align: 'auto' });
  }, [selectedIndex, virtualizer]);

  return (
    <div ref={scrollRef} className="conv-scroll" data-testid="conversation-list">
      <ul className="conv-list" aria-label={t.conversations} ref={(el) => el?.style.setProperty('height', `${virtualizer.getTotalSize()}px`)}>
        {virtualItems.map((row) => {
          const c = items[row.index];
          if (!c) {
            return (
              <li key="more" className="conv-more" ref={(el) => el?.style.setProperty('transform', `translateY(${row.start}px)`)}>
                {t.loadMore}
              </li>
            );
          }
          const label = contactLabel(c.contact, t.unknownContact);
          const when = c.lastMessageAt === null ? '' : formatWhen(c.lastMessageAt);
          const selected = c.id === selectedId;
          return (
            <li
              key={c.id}
              className="conv-row"
              ref={(el) => el?.style.setProperty('transform', `translateY(${row.start}px)`)}
            >
              <button
                type="button"
                className={`conv-item${selected ? ' selected' : ''}${c.unreadCount > 0 ? ' unread' : ''}`}
                aria-current={selected ? 'true' : undefined}
                data-conversation-id={c.id}
                onClick={() => onSelect(c.id)}
              >
                <span className="avatar" aria-hidden="true">
                  {initials(label)}
                </span>
                <span className="conv-main">
                  <span className="conv-top">
                    <span className="conv-name">{label}</span>
                    <span className="conv-time">{when}</span>
                  </span>
                  <span className="conv-bottom">
                    <span className="conv-preview" dir="auto">
                      {c.lastMessageDirection === 'out' ? t.youPrefix : ''}
                      {c.lastMessagePreview ?? t.noPreview}
                    </span>
                    {c.unreadCount > 0 ? (
                      <span className="badge" aria-label={t.unreadBadge(c.unreadCount)}>
                        {c.unreadCount > 99 ? '99+' : c.unreadCount}
                      </span>
                    ) : null}
                  </span>
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
