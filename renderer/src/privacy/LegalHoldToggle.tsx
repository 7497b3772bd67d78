import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { privacyKeys, useLegalHold } from './queries';
import { usePrivacyStrings } from './strings';

/** Admin only: puts a patient on legal hold (with a reason) or lifts it; both are audited. */
export function LegalHoldToggle({ contactId }: { contactId: number }): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const id = useId();
  const hold = useLegalHold(contactId);
  const [reason, setReason] = useState('');
  const [open, setOpen] = useState(false);
  const change = useMutation({
    mutationFn: async (on: boolean) => {
      if (on) await rpc.call('privacy.legalHold.set', { contactId, reason: reason.trim() });
      else await rpc.call('privacy.legalHold.clear', { contactId, reason: reason.trim() });
    },
    onSuccess: () => {
      setOpen(false);
      setReason('');
      void qc.invalidateQueries({ queryKey: privacyKeys.hold(contactId) });
    },
  });
  const held = hold.data ?? null;
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-hold">
      <h3 id={`${id}-h`}>{s.legalHoldTitle}</h3>
      <p>{held ? s.legalHoldOn(held.reason) : s.legalHoldOff}</p>
      <p className="help">{s.legalHoldExplain}</p>
      {open ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (reason.trim().length >= 3) change.mutate(!held);
          }}
        >
          <label htmlFor={`${id}-reason`}>{s.reasonLabel}</label>
          <input id={`${id}-reason`} value={reason} minLength={3} maxLength={500} required onChange={(e) => setReason(e.target.value)} />
          <button type="submit" disabled={change.isPending}>
            {held ? s.clearHold : s.setHold}
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            {s.cancel}
          </button>
        </form>
      ) : (
        <button onClick={() => setOpen(true)} aria-pressed={held !== null}>
          {held ? s.clearHold : s.setHold}
        </button>
      )}
      {hold.error || change.error ? <p role="alert">{errorText(change.error ?? hold.error)}</p> : null}
    </section>
  );
}
