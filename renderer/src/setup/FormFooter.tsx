import { useI18n } from '../i18n';

/** A setup form's error line and its buttons: Cancel when the step was opened from the inbox, then submit. */
export function FormFooter(props: { error: string | null; onCancel?: (() => void) | undefined; pending: boolean; label: string }): React.JSX.Element {
  const { t } = useI18n();
  return (
    <>
      {props.error ? (
        <p className="form-error" role="alert">
          {props.error}
        </p>
      ) : null}
      <div className="setup-actions">
        {props.onCancel ? (
          <button type="button" className="secondary" onClick={props.onCancel}>
            {t.cancel}
          </button>
        ) : null}
        <button type="submit" className="primary" disabled={props.pending}>
          {props.label}
        </button>
      </div>
    </>
  );
}
