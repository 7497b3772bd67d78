import { useCallback } from 'react';
import type { PersonalDataFinding, SendGuardMode } from '../../../shared/rpc';
import { useRpc } from '../rpc';
import { usePrivacyStrings } from './strings';

export interface OutgoingCheck {
  findings: PersonalDataFinding[];
  mode: SendGuardMode;
  blocked: boolean;
}

/** The composer's check before sending: `privacy.checkOutgoing` (the core's detector, nothing stored). */
export function useOutgoingCheck(): (text: string) => Promise<OutgoingCheck> {
  const rpc = useRpc();
  return useCallback((text: string) => rpc.call('privacy.checkOutgoing', { text }), [rpc]);
}

interface Props {
  text: string;
  check: OutgoingCheck;
  /** Warn mode: the receptionist confirmed; send the text as it is. */
  onConfirm(): void;
  /** Back to the composer to edit. */
  onCancel(): void;
}

/**
 * Shown by the composer when `useOutgoingCheck` found identifiers: the message with each finding
 * highlighted (<mark>, named by its kind), and "Send anyway" in warn mode. In block mode there is
 * only "Edit message": the core would refuse the send anyway (PERSONAL_DATA_BLOCKED).
 */
export function SendGuard({ text, check, onConfirm, onCancel }: Props): React.JSX.Element {
  const s = usePrivacyStrings();
  const parts: React.ReactNode[] = [];
  let at = 0;
  for (const [i, f] of check.findings.entries()) {
    if (f.start > at) parts.push(text.slice(at, f.start));
    parts.push(
      <mark key={i} className="privacy-finding" title={s.findingKind[f.kind]}>
        {text.slice(f.start, f.end)}
        <span className="visually-hidden"> ({s.findingKind[f.kind]})</span>
      </mark>,
    );
    at = f.end;
  }
  parts.push(text.slice(at));
  const kinds = [...new Set(check.findings.map((f) => s.findingKind[f.kind]))];
  return (
    <div role="alertdialog" aria-labelledby="send-guard-title" aria-describedby="send-guard-intro" className="privacy-send-guard">
      <h2 id="send-guard-title">{s.guardTitle}</h2>
      <p id="send-guard-intro">{check.blocked ? s.guardBlocked : s.guardIntro}</p>
      <ul>
        {kinds.map((k) => (
          <li key={k}>{k}</li>
        ))}
      </ul>
      <blockquote className="privacy-guard-text">{parts}</blockquote>
      <div className="privacy-actions">
        <button onClick={onCancel} autoFocus>
          {s.guardEdit}
        </button>
        {check.blocked ? null : (
          <button className="danger" onClick={onConfirm}>
            {s.guardSendAnyway}
          </button>
        )}
      </div>
    </div>
  );
}
