import { forwardRef, useEffect, useState } from 'react';
import type { ConversationSummary } from '../../../shared/rpc';
import { flattenConversations, useConversations, useSearch, type InboxFilter } from '../data/queries';
import { useI18n } from '../i18n';
import { markPainted } from '../perf/marks';
import { ConversationList } from './ConversationList';
import { Highlighted } from './Highlighted';

interface Props {
  filter: InboxFilter;
  onFilter(filter: InboxFilter): void;
  query: string;
  onQuery(query: string): void;
  selectedId: number | null;
  onSelect(id: number, messageId?: number): void;
  /** The conversations in on-screen order, for ↑/↓. */
  onVisibleChange(items: ConversationSummary[]): void;
}

const FILTERS: InboxFilter[] = ['all', 'unread', 'mine', 'resolved'];

export const Sidebar = forwardRef<HTMLInputElement, Props>(function Sidebar(
  { filter, onFilter, query, onQuery, selectedId, onSelect, onVisibleChange },
  searchRef,
) {
  const { t } = useI18n();
  const [debounced, setDebounced] = useState(query);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(query.trim()), 200);
    return () => clearTimeout(timer);
  }, [query]);
  const searching = debounced.length > 0;
  const list = useConversations(filter, !searching);
  const items = flattenConversations(list.data?.pages);
  useEffect(() => onVisibleChange(items), [items, onVisibleChange]);
  const listReady = !list.isPending;
  useEffect(() => {
    if (listReady) markPainted('inbox');
  }, [listReady]);
  const filterNames: Record<InboxFilter, string> = { all: t.filterAll, unread: t.filterUnread, mine: t.filterMine, resolved: t.filterResolved };

  return (
    <aside className="sidebar" aria-label={t.conversations}>
      <div className="search">
        <label htmlFor="search-input" className="visually-hidden">
          {t.searchLabel}
        </label>
        <input
          id="search-input"
          ref={searchRef}
          type="search"
          placeholder={t.searchPlaceholder}
          value={query}
          onChange={(e) => onQuery(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
      </div>
      {searching ? (
        <SearchResults query={debounced} selectedId={selectedId} onSelect={onSelect} />
      ) : (
        <>
          <div className="filters" role="group" aria-label={t.filterLabel}>
            {FILTERS.map((f) => (
              <button key={f} type="button" className="filter" aria-pressed={f === filter} onClick={() => onFilter(f)}>
                {filterNames[f]}
              </button>
            ))}
          </div>
          {list.isPending ? (
            <p className="state">{t.loading}</p>
          ) : list.isError ? (
            <ErrorState error={list.error} onRetry={() => void list.refetch()} />
          ) : items.length === 0 ? (
            <p className="state">{filter === 'all' ? t.emptyInbox : t.emptyFilter}</p>
          ) : (
            <ConversationList
              items={items}
              selectedId={selectedId}
              onSelect={(id) => onSelect(id)}
              hasMore={list.hasNextPage}
              loadingMore={list.isFetchingNextPage}
              onLoadMore={() => void list.fetchNextPage()}
            />
          )}
        </>
      )}
    </aside>
  );
});

function SearchResults({ query, selectedId, onSelect }: { query: string; selectedId: number | null; onSelect(id: number, messageId: number): void }): React.JSX.Element {
  const { t, formatDay, formatTime } = useI18n();
  const search = useSearch(query);
  if (search.isPending) return <p className="state">{t.loading}</p>;
  if (search.isError) return <ErrorState error={search.error} onRetry={() => void search.refetch()} />;
  const hits = search.data.items;
  return (
    <div className="search-results" data-testid="search-results">
      <p className="state small" role="status" id="search-status">
        {hits.length === 0 ? t.searchNoHits(query) : t.searchResults(hits.length)}
      </p>
      <ul aria-labelledby="search-status">
        {hits.map((h) => (
          <li key={h.messageId}>
            <button
              type="button"
              className={`hit${h.conversationId === selectedId ? ' selected' : ''}`}
              onClick={() => onSelect(h.conversationId, h.messageId)}
            >
              <span className="conv-top">
                <span className="conv-name">{h.contactName ?? t.unknownContact}</span>
                <span className="conv-time">
                  {formatDay(h.at)} {formatTime(h.at)}
                </span>
              </span>
              <span className="hit-snippet">
                <Highlighted snippet={h.snippet} />
              </span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry(): void }): React.JSX.Element {
  const { t, errorText } = useI18n();
  return (
    <div className="state error" role="alert">
      <p>{errorText(error)}</p>
      <button type="button" onClick={onRetry}>
        {t.retry}
      </button>
    </div>
  );
}
