import { useSettingsStrings } from './strings';
import './settings.css';

/** The padlock and its words, beside any value the organisation's policy set. */
export function PolicyLock(): React.JSX.Element {
  const s = useSettingsStrings();
  return (
    <span className="policy-lock" data-testid="policy-lock">
      <svg aria-hidden="true" viewBox="0 0 16 16" width="14" height="14">
        <path d="M5 7V5a3 3 0 0 1 6 0v2h.5A1.5 1.5 0 0 1 13 8.5v5a1.5 1.5 0 0 1-1.5 1.5h-7A1.5 1.5 0 0 1 3 13.5v-5A1.5 1.5 0 0 1 4.5 7H5zm1.5 0h3V5a1.5 1.5 0 0 0-3 0v2z" fill="currentColor" />
      </svg>
      {s.setByOrganisation}
    </span>
  );
}
