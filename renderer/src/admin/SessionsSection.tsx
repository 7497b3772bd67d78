import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { SessionInfo } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { AdminTable } from './AdminTable';
import { QueryState } from './QueryState';
import { ConfirmDialog } from './Dialog';
import { adminKeys, useSessions } from './queries';
import { useAdminStrings } from './strings';
import { useDateTime } from './useDateTime';

export function SessionsSection(): React.JSX.Element {
  const s = useAdminStrings();
  const { t, errorText } = useI18n();
  const when = useDateTime();
  const rpc = useRpc();
  const qc = useQueryClient();
  const sessions = useSessions();
  const [ending, setEnding] = useState<SessionInfo | null>(null);
  const revoke = useMutation({
    mutationFn: (sessionId: string) => rpc.call('sessions.revoke', { sessionId }),
    onSuccess: () => setEnding(null),
    onSettled: () => qc.invalidateQueries({ queryKey: adminKeys.sessions }),
  });

  return (
    <section className="admin-section" aria-labelledby="sessions-title">
      <div className="section-head">
        <h3 id="sessions-title">{s.sessions}</h3>
        <button type="button" className="small secondary" disabled={sessions.isFetching} onClick={() => void sessions.refetch()}>
          {s.refresh}
        </button>
      </div>
      <QueryState query={sessions} />
      {sessions.data?.length === 0 ? <p className="state">{s.noSessions}</p> : null}
      {sessions.data && sessions.data.length > 0 ? (
        <AdminTable testId="sessions-table" columns={[s.who, s.desk, s.started, s.lastActive, s.state, s.actions]}>
          {sessions.data.map((x) => (
            <tr key={x.id} data-username={x.username} className={x.current ? 'current' : undefined}>
              <th scope="row">
                {x.displayName} <span className="muted mono small">{x.username}</span>
                {x.current ? <span className="tag">{s.thisWindow}</span> : null}
              </th>
              <td className="mono small">{x.origin}</td>
              <td>
                <time title={when.utc(x.startedAt)}>{when.local(x.startedAt)}</time>
              </td>
              <td>
                <time title={when.utc(x.lastActiveAt)}>{when.local(x.lastActiveAt)}</time>
              </td>
              <td>{s[`state_${x.state}`]}</td>
              <td>
                <div className="row-actions">
                  <button type="button" className="small danger" aria-label={`${s.endSession}: ${x.displayName}, ${x.origin}`} onClick={() => setEnding(x)}>
                    {s.endSession}
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </AdminTable>
      ) : null}
      {ending ? (
        <ConfirmDialog
          title={s.endSession}
          message={`${s.confirmEndSession(ending.displayName, ending.origin)}${ending.current ? ` ${s.confirmEndOwnSession}` : ''}`}
          confirmLabel={s.endSession}
          cancelLabel={t.cancel}
          busy={revoke.isPending}
          error={revoke.isError ? errorText(revoke.error) : null}
          onCancel={() => {
            revoke.reset();
            setEnding(null);
          }}
          onConfirm={() => revoke.mutate(ending.id)}
        />
      ) : null}
    </section>
  );
}
