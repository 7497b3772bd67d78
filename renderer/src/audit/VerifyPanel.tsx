import { useMutation } from '@tanstack/react-query';
import type { AuditVerdict } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { useAuditStrings, type AuditStrings } from './strings';

function WitnessLine({ witness, s }: { witness: AuditVerdict['witness']; s: AuditStrings }): React.JSX.Element | null {
  if (witness.ok === true) return <p>{s.witnessOk(witness.witnessedSeq === null ? s.none : String(witness.witnessedSeq))}</p>;
  if (witness.ok === null) return <p>{s.witnessUnknown(witness.reason)}</p>;
  return null;
}

function Verdict({ verdict, s }: { verdict: AuditVerdict; s: AuditStrings }): React.JSX.Element {
  const { chain, witness } = verdict;
  if (!chain.ok || witness.ok === false) {
    return (
      <div className="verdict tampered" role="alert" data-testid="audit-verdict">
        <p className="verdict-title">{s.tampered}</p>
        {!chain.ok ? <p>{s.chainBroken(chain.brokenAt, chain.reason)}</p> : null}
        {witness.ok === false ? <p>{s.witnessBroken(witness.reason)}</p> : <WitnessLine witness={witness} s={s} />}
      </div>
    );
  }
  return (
    <div className="verdict intact" role="status" data-testid="audit-verdict">
      <p className="verdict-title">{s.intact}</p>
      <p>{s.intactDetail(chain.entries, chain.headSeq === null ? s.none : String(chain.headSeq))}</p>
      {chain.prunedThrough !== null ? <p>{s.prunedDetail(String(chain.prunedThrough))}</p> : null}
      <WitnessLine witness={witness} s={s} />
    </div>
  );
}

/** "Verify the log": the whole chain, and the relay's outside witness, with a verdict nobody can miss. */
export function VerifyPanel(): React.JSX.Element {
  const s = useAuditStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const verify = useMutation({ mutationFn: () => rpc.call('audit.verify', { withRelayWitness: true }) });
  return (
    <section className="admin-section verify" aria-label={s.verify}>
      <button type="button" className="primary" disabled={verify.isPending} onClick={() => verify.mutate()}>
        {verify.isPending ? s.verifying : s.verify}
      </button>
      {verify.data ? <Verdict verdict={verify.data} s={s} /> : null}
      {verify.isError ? (
        <p className="form-error" role="alert">
          {errorText(verify.error)}
        </p>
      ) : null}
    </section>
  );
}
