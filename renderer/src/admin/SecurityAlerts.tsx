import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { SecurityAlert } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { adminKeys, useSecurityAlerts } from './queries';
import { useAdminStrings, type AdminStrings } from './strings';
import { useDateTime } from './useDateTime';

function alertText(s: AdminStrings, alert: SecurityAlert): string {
  const who = alert.displayName ?? s.someone;
  const where = alert.origin ? ` ${s.atDesk(alert.origin)}` : '';
  const what =
    alert.kind === 'many_patients' ? s.alert_many_patients(who, alert.count ?? 0) : alert.kind === 'outside_hours' ? s.alert_outside_hours(who) : s.alert_failed_sign_ins(who, alert.count ?? 0);
  return `${what}${where}.`;
}

/** The open security alerts as a banner (admins and auditors), each acknowledged on its own. */
export function SecurityAlerts(): React.JSX.Element | null {
  const s = useAdminStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const when = useDateTime();
  const alerts = useSecurityAlerts();
  const [open, setOpen] = useState(false);
  const acknowledge = useMutation({
    mutationFn: (alertId: number) => rpc.call('security.acknowledgeAlert', { alertId }),
    onSettled: () => qc.invalidateQueries({ queryKey: adminKeys.alerts }),
  });
  const items = alerts.data ?? [];
  if (items.length === 0) return null;
  return (
    <section className="security-alerts" aria-label={s.alerts} data-testid="security-alerts">
      <div className="banner warn" role="status">
        <span>{s.alertsWaiting(items.length)}</span>
        <button type="button" className="small" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
          {open ? s.hideAlerts : s.showAlerts}
        </button>
      </div>
      {open ? (
        <ul className="alert-list">
          {items.map((a) => (
            <li key={a.id}>
              <time dateTime={new Date(a.at).toISOString()} title={when.utc(a.at)}>
                {when.local(a.at)}
              </time>
              <span className="alert-text">{alertText(s, a)}</span>
              <button type="button" className="small" disabled={acknowledge.isPending} onClick={() => acknowledge.mutate(a.id)}>
                {s.acknowledge}
              </button>
            </li>
          ))}
          {acknowledge.isError ? (
            <li className="form-error" role="alert">
              {errorText(acknowledge.error)}
            </li>
          ) : null}
        </ul>
      ) : null}
    </section>
  );
}
