import { useEffect, useState } from 'react';
import type { RelayRefusedReason, RelayStatus, WhatsAppStatus } from '../../../shared/rpc';
import { useHasRole } from '../data/queries';
import { useI18n, type Strings } from '../i18n';

interface Props {
  relay: RelayStatus | undefined;
  whatsapp: WhatsAppStatus | undefined;
  appLinkUp: boolean;
  onFixWhatsApp(): void;
  /** Opens the pairing step of the setup wizard (offered to admins while the relay refuses this computer). */
  onPairAgain(): void;
}

/** What stands between the desk and its patients, said plainly at the top of the window. */
export function Banners({ relay, whatsapp, appLinkUp, onFixWhatsApp, onPairAgain }: Props): React.JSX.Element | null {
  const { t, formatTime } = useI18n();
  const isAdmin = useHasRole('admin');
  const banners: React.JSX.Element[] = [];
  const connectingLong = useDelayed(relay?.state === 'connecting', 2_000);
  if (!appLinkUp) {
    banners.push(
      <div key="app" className="banner warn">
        {t.appLinkDown}
      </div>,
    );
  }
  if (relay?.state === 'refused') {
    const reason = relay.refusedReason ?? 'revoked';
    banners.push(
      <div key="relay" className="banner error" data-testid="relay-banner" data-reason={reason}>
        <span>{refusedText(t, reason)}</span>
        {/* A wrong clock is fixed in the operating system, not by pairing again. */}
        {isAdmin && reason !== 'clock_skew' ? (
          <button type="button" onClick={onPairAgain}>
            {t.pairAgain}
          </button>
        ) : null}
      </div>,
    );
  } else if (relay?.state === 'offline') {
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
        {isAdmin ? (
          <button type="button" onClick={onFixWhatsApp}>
            {t.enterNewToken}
          </button>
        ) : null}
      </div>,
    );
  } else if (whatsapp && !whatsapp.configured) {
    banners.push(
      <div key="wa" className="banner warn" data-testid="token-banner">
        <span>{t.whatsappNotConfigured}</span>
        {isAdmin ? (
          <button type="button" onClick={onFixWhatsApp}>
            {t.setUpWhatsApp}
          </button>
        ) : null}
      </div>,
    );
  }
  // Failures since the app secret was last entered: entering it again re-checks them, so this goes away once IT has looked.
  const signature = whatsapp?.signatureCheck;
  if (signature?.enabled && signature.failedSince > 0) {
    banners.push(
      <div key="signature" className="banner error" data-testid="signature-banner">
        <span>{t.signatureFailures(signature.failedSince)}</span>
        {isAdmin ? (
          <button type="button" onClick={onFixWhatsApp}>
            {t.checkAppSecret}
          </button>
        ) : null}
      </div>,
    );
  }
  // message shapes: what arrived that the inbox keeps but cannot show, for the admin to follow up.
  const ingest = whatsapp?.ingest;
  if (isAdmin && ingest) {
    const lines: string[] = [];
    const ignored = ingest.ignoredFields.reduce((n, f) => n + f.count, 0);
    if (ignored > 0) lines.push(t.ingestIgnored(ignored, ingest.ignoredFields.map((f) => `${f.field} × ${f.count}`).join(', ')));
    if (ingest.unattributable.count > 0) lines.push(t.ingestUnattributed(ingest.unattributable.count));
    const unsupported = ingest.unsupported.reduce((n, u) => n + u.count, 0);
    if (unsupported > 0) lines.push(t.ingestUnsupported(unsupported));
    for (const e of ingest.recentErrors.slice(0, 3)) {
      lines.push(`${t.ingestMetaError(e.code, e.title ?? e.message ?? '')}${e.details ? ` — ${e.details}` : ''}`);
    }
    if (lines.length > 0) {
      banners.push(
        <div key="ingest" className="banner info" data-testid="ingest-banner">
          <ul className="banner-lines">
            {lines.map((line, i) => (
              <li key={i}>{line}</li>
            ))}
          </ul>
        </div>,
      );
    }
  }
  if (banners.length === 0) return null;
  return (
    <div className="banners" role="status" aria-live="polite">
      {banners}
    </div>
  );
}

function refusedText(t: Strings, reason: RelayRefusedReason): string {
  switch (reason) {
    case 'revoked':
      return t.relayRevoked;
    case 'not_recognised':
      return t.relayNotRecognised;
    case 'device_keys_changed':
      return t.relayKeysChanged;
    case 'clock_skew':
      return t.relayClockSkew;
    case 'another_computer':
      return t.relayAnotherComputer;
  }
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
