import { useEffect, useState } from 'react';
import type { RelayStatus, WhatsAppStatus } from '../../../shared/rpc';
import { useI18n } from '../i18n';

interface Props {
  relay: RelayStatus | undefined;
  whatsapp: WhatsAppStatus | undefined;
  appLinkUp: boolean;
  onFixWhatsApp(): void;
}

/** What stands between the desk and its patients, said plainly at the top of the window. */
export function Banners({ relay, whatsapp, appLinkUp, onFixWhatsApp }: Props): React.JSX.Element | null {
  const { t, formatTime } = useI18n();
  const banners: React.JSX.Element[] = [];
  const connectingLong = useDelayed(relay?.state === 'connecting', 2_000);
  if (!appLinkUp) {
    banners.push(
      <div key="app" className="banner warn">
        {t.appLinkDown}
      </div>,
    );
  }
  if (relay?.state === 'offline') {
    banners.push(
      <div key="relay" className="banner warn" data-testid="relay-banner">
        {t.relayOffline(formatTime(relay.offlineSince ?? Date.now()), relay.backlog?.queued ? relay.backlog.queued : null)}
      </div>,
    );
  } else if (relay?.state === 'connecting' && connectingLong) {
    banners.push(
      <div key="relay" className="banner info" data-testid="relay-banner">
        {t.relayConnecting}
      </div>,
    );
  }
  if (whatsapp?.tokenExpired) {
    banners.push(
      <div key="wa" className="banner error" data-testid="token-banner">
        <span>{t.tokenExpired}</span>
        <button type="button" onClick={onFixWhatsApp}>
          {t.enterNewToken}
        </button>
      </div>,
    );
  } else if (whatsapp && !whatsapp.configured) {
    banners.push(
      <div key="wa" className="banner warn" data-testid="token-banner">
        <span>{t.whatsappNotConfigured}</span>
        <button type="button" onClick={onFixWhatsApp}>
          {t.setUpWhatsApp}
        </button>
      </div>,
    );
  }
  if (banners.length === 0) return null;
  return (
    <div className="banners" role="status" aria-live="polite">
      {banners}
    </div>
  );
}

/** True once `flag` has stayed true for `ms`: a reconnect that succeeds at once is not news. */
function useDelayed(flag: boolean, ms: number): boolean {
  const [shown, setShown] = useState(false);
  useEffect(() => {
    if (!flag) {
      setShown(false);
      return;
    }
    const timer = setTimeout(() => setShown(true), ms);
    return () => clearTimeout(timer);
  }, [flag, ms]);
  return shown;
}
