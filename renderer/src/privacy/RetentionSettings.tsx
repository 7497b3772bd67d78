import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useState } from 'react';
import { RETENTION_MAX_DAYS, type RetentionRule, type SendGuardMode } from '../../../shared/rpc';
import { useI18n } from '../i18n';
import { useRpc } from '../rpc';
import { privacyKeys, usePrivacySettings, useRetention, useRetentionPreview } from './queries';
import { usePrivacyStrings } from './strings';

type Draft = Pick<RetentionRule, 'kind' | 'days' | 'legalMinimumDays'>;
const valid = (r: Draft) => Number.isInteger(r.days) && Number.isInteger(r.legalMinimumDays) && r.legalMinimumDays >= 0 && r.days >= Math.max(1, r.legalMinimumDays) && r.days <= RETENTION_MAX_DAYS;

/** Admin settings: the send guard's mode and the retention policy with its preview and "Run now". */
export function PrivacySettings(): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const id = useId();
  const settings = usePrivacySettings();
  const save = useMutation({
    mutationFn: (sendGuard: SendGuardMode) => rpc.call('privacy.updateSettings', { sendGuard }),
    onSuccess: (saved) => qc.setQueryData(privacyKeys.settings, saved),
  });
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-settings">
      <h2 id={`${id}-h`}>{s.settingsTitle}</h2>
      <fieldset>
        <legend>{s.sendGuardLabel}</legend>
        {(['warn', 'block'] as const).map((mode) => (
          <label key={mode}>
            <input type="radio" name={`${id}-guard`} value={mode} checked={settings.data?.sendGuard === mode} disabled={!settings.data || save.isPending} onChange={() => save.mutate(mode)} />
            {mode === 'warn' ? s.sendGuardWarn : s.sendGuardBlock}
          </label>
        ))}
      </fieldset>
      {save.error ? <p role="alert">{errorText(save.error)}</p> : null}
      <RetentionSettings />
    </section>
  );
}

export function RetentionSettings(): React.JSX.Element {
  const s = usePrivacyStrings();
  const { errorText, formatDay, formatTime } = useI18n();
  const rpc = useRpc();
  const qc = useQueryClient();
  const id = useId();
  const retention = useRetention();
  const preview = useRetentionPreview();
  const [draft, setDraft] = useState<Draft[] | null>(null);
  useEffect(() => {
    if (retention.data && draft === null) setDraft(retention.data.rules.map(({ kind, days, legalMinimumDays }) => ({ kind, days, legalMinimumDays })));
  }, [retention.data, draft]);
  const save = useMutation({
    mutationFn: () => rpc.call('privacy.retention.update', { rules: draft! }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: privacyKeys.retention });
    },
  });
  const run = useMutation({
    mutationFn: () => rpc.call('privacy.retention.runNow', {}),
    onSuccess: () => void qc.invalidateQueries({ queryKey: privacyKeys.retention }),
  });
  const when = (ms: number) => `${formatDay(ms)} ${formatTime(ms)}`;
  const set = (i: number, patch: Partial<Draft>) => setDraft((d) => d!.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const last = retention.data?.lastRun ?? null;
  return (
    <section aria-labelledby={`${id}-h`} className="privacy-retention">
      <h3 id={`${id}-h`}>{s.retentionTitle}</h3>
      {draft ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (draft.every(valid)) save.mutate();
          }}
          onChange={() => save.isSuccess && save.reset()}
        >
          <table>
            <thead>
              <tr>
                <th scope="col">{s.retentionTitle}</th>
                <th scope="col">{s.daysLabel}</th>
                <th scope="col">{s.minimumLabel}</th>
              </tr>
            </thead>
            <tbody>
              {draft.map((r, i) => (
                <tr key={r.kind}>
                  <th scope="row">{s.retentionKind[r.kind]}</th>
                  <td>
                    <input type="number" min={1} max={RETENTION_MAX_DAYS} aria-label={`${s.retentionKind[r.kind]}: ${s.daysLabel}`} aria-invalid={!valid(r) || undefined} value={r.days} onChange={(e) => set(i, { days: Number(e.target.value) })} />
                  </td>
                  <td>
                    <input type="number" min={0} max={RETENTION_MAX_DAYS} aria-label={`${s.retentionKind[r.kind]}: ${s.minimumLabel}`} value={r.legalMinimumDays} onChange={(e) => set(i, { legalMinimumDays: Number(e.target.value) })} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {draft.every(valid) ? null : <p className="form-error">{s.retentionInvalid}</p>}
          <button type="submit" disabled={save.isPending || !draft.every(valid)}>
            {s.save}
          </button>
          {save.isSuccess ? <span role="status">{s.saved}</span> : null}
        </form>
      ) : null}
      {preview.data ? (
        <div>
          <h4>{s.previewTitle}</h4>
          <p>{s.previewLine(preview.data.messages, preview.data.conversations, preview.data.media)}</p>
          <p className="help">{s.previewKept(preview.data.audit, preview.data.heldPatients)}</p>
          {preview.data.auditHeld > 0 ? <p className="help">{s.auditHeldKept(preview.data.auditHeld)}</p> : null}
        </div>
      ) : null}
      <p>{last?.counts ? s.lastRun(when(last.startedAt), last.counts.messages, last.counts.media) : s.neverRun}</p>
      {retention.data?.nextRunAt ? <p>{s.nextRun(when(retention.data.nextRunAt))}</p> : null}
      <button onClick={() => run.mutate()} disabled={run.isPending}>
        {run.isPending ? s.running : s.runNow}
      </button>
      {retention.error || save.error || run.error ? <p role="alert">{errorText(save.error ?? run.error ?? retention.error)}</p> : null}
    </section>
  );
}
