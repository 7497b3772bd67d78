import { forwardRef, useEffect, useMemo, useRef, useState } from 'react';
import type { ConversationSummary } from '../../../shared/rpc';
import { flattenConversations, useContactSearch, useConversations, useSearch, type InboxFilter } from '../data/queries';
import { useI18n } from '../i18n';
import { markPainted } from '../perf/marks';
import { ConversationList } from './ConversationList';
import { Highlighted } from './Highlighted';
import { contactLabel, formatNumber } from './names';

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
  const loaded = flattenConversations(list.data?.pages);
  // The open conversation stays where the receptionist sees it, even when a change (resolved,
  // read, assigned away) takes it out of this filter: it leaves the list once they move on.
  const kept = useRef<ConversationSummary | null>(null);
  const keptIndex = useRef(0);
  const items = useMemo(() => {
    const here = loaded.find((c) => c.id === selectedId);
    if (here) kept.current = here;
    else if (kept.current?.id !== selectedId) kept.current = null;
    if (here || !kept.current || list.isPending) return loaded;
    const at = Math.min(keptIndex.current, loaded.length);
    return [...loaded.slice(0, at), kept.current, ...loaded.slice(at)];
  }, [loaded, selectedId, list.isPending]);
  const selectedIndex = items.findIndex((c) => c.id === selectedId);
  if (selectedIndex >= 0) keptIndex.current = selectedIndex;
  useEffect(() => onVisibleChange(items), [items, onVisibleChange]);
  const listReady = !list.isPending;
  useEffect(() => {
    if (listReady) markPainted('inbox');
  }, [listReady]);
  // "All" shows what the core's `all` lists: every conversation not resolved, so it is named "Open".
  const filterNames: Record<InboxFilter, string> = { all: t.filterOpen, unread: t.filterUnread, mine: t.filterMine, resolved: t.filterResolved };

  return (
    <aside className="sidebar" aria-label={t.conversations}>
      <div className="search">
        <label htmlFor="search-input" className="visually-hidden">
          {t.searchLabelAll}
        </label>
        <input
          id="search-input"
          ref={searchRef}
          type="search"
          placeholder={t.searchPlaceholderAll}
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

function SearchResults({ query, selectedId, onSelect }: { query: string; selectedId: number | null; onSelect(id: number, messageId?: number): void }): React.JSX.Element {
  const { t, formatDay, formatTime } = useI18n();
  const search = useSearch(query);
  const people = useContactSearch(query);
  if (search.isPending || people.isPending) return <p className="state">{t.loading}</p>;
  if (search.isError) return <ErrorState error={search.error} onRetry={() => void search.refetch()} />;
  if (people.isError) return <ErrorState error={people.error} onRetry={() => void people.refetch()} />;
  const hits = search.data.items;
  const contacts = people.data.items;
  return (
    <div className="search-results" data-testid="search-results">
      {contacts.length > 0 ? (
        <>
          <h2 className="search-heading small" id="contact-hits">
            {t.contactsFound(contacts.length)}
          </h2>
          <ul aria-labelledby="contact-hits" data-testid="contact-hits">
            {contacts.map((c) => (
              <li key={c.contactId}>
                <button
                  type="button"
                  className={`hit contact-hit${c.conversationId === selectedId ? ' selected' : ''}`}
                  disabled={c.conversationId === null}
                  onClick={() => c.conversationId !== null && onSelect(c.conversationId)}
                >
                  <span className="conv-top">
                    <span className="conv-name">{contactLabel({ displayName: c.displayName, profileName: c.profileName, waId: c.waId }, t.unknownContact)}</span>
                    <span className="conv-time">{c.waId ? formatNumber(c.waId) : ''}</span>
                  </span>
                  {c.snippet ? (
                    <span className="hit-snippet">
                      {t.matchedNotes}: <Highlighted snippet={c.snippet} />
                    </span>
                  ) : null}
                </button>
              </li>
            ))}
          </ul>
          <h2 className="search-heading small">{t.messagesFound}</h2>
        </>
      ) : null}
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
