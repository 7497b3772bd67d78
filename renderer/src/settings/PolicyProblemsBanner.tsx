import { useOverview } from './SettingsScreen';
import { useSettingsStrings } from './strings';

/** For admins at the top of every screen but Settings (which lists them): the policy keys that were ignored. */
export function PolicyProblemsBanner({ onOpen }: { onOpen(): void }): React.JSX.Element | null {
  const s = useSettingsStrings();
  const overview = useOverview();
  const count = overview.data?.policy.problems.length ?? 0;
  if (count === 0) return null;
  return (
    <div className="banner warn" role="alert" data-testid="policy-banner">
      <p>{s.policyBanner(count)}</p>
      <button type="button" onClick={onOpen}>
        {s.policyDetails}
      </button>
    </div>
  );
}
