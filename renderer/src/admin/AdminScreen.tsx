import { PrivacySettings, RequestsList } from '../privacy';
import { SecurityAlerts } from './SecurityAlerts';
import { SessionsSection } from './SessionsSection';
import { SettingsSection } from './SettingsSection';
import { UsersSection } from './UsersSection';
import { useAdminStrings } from './strings';
import './admin.css';

/** The admin's desk: users, the sessions open right now, the clinic's security settings and alerts. */
export function AdminScreen(): React.JSX.Element {
  const s = useAdminStrings();
  return (
    <main className="admin-screen" aria-labelledby="admin-title" data-testid="admin-screen">
      <h2 id="admin-title" className="screen-title">
        {s.title}
      </h2>
      <SecurityAlerts />
      <UsersSection />
      <SessionsSection />
      <SettingsSection />
      {/* Privacy: every open rights request with its deadline, the send guard and retention. */}
      <RequestsList />
      <PrivacySettings />
    </main>
  );
}
