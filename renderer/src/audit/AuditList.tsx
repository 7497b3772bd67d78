import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef } from 'react';
import type { AuditEntryView } from '../../../shared/rpc';
import { useDateTime } from '../admin';
import { actionLabel, useAuditStrings } from './strings';

interface Props {
  items: AuditEntryView[];
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore(): void;
  onSession(sessionId: string): void;
}

const ROW_HEIGHT = 44;
const shortSession = (id: string): string => id.slice(0, 8);

/**
 * The entries as an ARIA table whose rows are virtualized: `aria-rowcount`/`aria-rowindex` tell
 * assistive technology where each rendered row sits in the whole result.
 */
export function AuditList({ items, hasMore, loadingMore, onLoadMore, onSession }: Props): React.JSX.Element {
  const s = useAuditStrings();
  const when = useDateTime();
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: items.length + (hasMore ? 1 : 0),
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const rows = virtualizer.getVirtualItems();
  const last = rows[rows.length - 1];
  useEffect(() => {
    if (last && last.index >= items.length - 1 && hasMore && !loadingMore) onLoadMore();
  }, [last, items.length, hasMore, loadingMore, onLoadMore]);

  const columns = [s.colTime, s.colWho, s.colAction, s.colPatient, s.colDesk, s.colSession, s.colOutcome, s.colReason];
  return (
    <div className="audit-table" role="table" aria-label={s.entries} aria-rowcount={hasMore ? -1 : items.length + 1} data-testid="audit-entries">
      <div role="rowgroup" className="audit-head">
        <div role="row" aria-rowindex={1} className="audit-row">
          {columns.map((c) => (
            <span key={c} role="columnheader">
              {c}
            </span>
          ))}
        </div>
      </div>
      <div ref={scrollRef} className="audit-scroll">
        <div role="rowgroup" className="audit-body" ref={(el) => el?.style.setProperty('height', `${virtualizer.getTotalSize()}px`)}>
          {rows.map((row) => {
            const e = items[row.index];
            const place = (el: HTMLDivElement | null): void => el?.style.setProperty('transform', `translateY(${row.start}px)`);
            if (!e) {
              return (
                <div key="more" role="row" className="audit-row audit-more" ref={place}>
                  <span role="cell">{s.loadingMore}</span>
                </div>
              );
            }
            const patients = e.contacts.map((c) => c.name ?? s.unknownPatient(c.id)).join(', ');
            const who = e.displayName ?? e.userId;
            const roles = e.roles.join(', ');
            return (
              <div key={e.seq} role="row" aria-rowindex={row.index + 2} className={`audit-row outcome-${e.outcome}`} data-seq={e.seq} ref={place}>
                <span role="cell">
                  <time dateTime={new Date(e.at).toISOString()} title={when.utc(e.at)}>
                    {when.localSeconds(e.at)}
                  </time>
                </span>
                <span role="cell" title={`${who} (${roles}) · ${e.userId}`}>
                  <span className="cell-main">{who}</span>
                  <span className="cell-sub">{roles}</span>
                </span>
                <span role="cell" title={e.method}>
                  <span className="cell-main">{actionLabel(s, e.action)}</span>
                  <span className="cell-sub mono">{e.method}</span>
                </span>
                <span role="cell" title={patients}>
                  {patients || s.none}
                </span>
                <span role="cell" className="mono" title={e.origin}>
                  {e.origin}
                </span>
                <span role="cell">
                  {e.sessionId ? (
                    <button type="button" className="link-button mono" title={e.sessionId} aria-label={s.filterBySession(shortSession(e.sessionId))} onClick={() => onSession(e.sessionId!)}>
                      {shortSession(e.sessionId)}
                    </button>
                  ) : (
                    s.none
                  )}
                </span>
                <span role="cell" className="outcome">
                  {s[`outcome_${e.outcome}`]}
                  {e.errorCode ? <span className="cell-sub mono">{e.errorCode}</span> : null}
                </span>
                <span role="cell" title={e.reason ?? undefined}>
                  {e.reason ?? s.none}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
