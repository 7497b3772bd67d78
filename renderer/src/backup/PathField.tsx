import { useMemo, useState } from 'react';
import { useI18n } from '../i18n';
import { nativeChooser, type ChoosePurpose } from './nativeDialogs';
import { useBackupStrings } from './strings';

/**
 * A folder or file path: typed (a NAS share's full path works everywhere), and in the Electron
 * shell also chosen in the OS's own dialog with the button beside it.
 */
export function PathField(props: { id: string; label: string; help: string; value: string; onChange(value: string): void; purpose: ChoosePurpose; required?: boolean; className?: string }): React.JSX.Element {
  const s = useBackupStrings();
  const { errorText } = useI18n();
  const choose = useMemo(() => nativeChooser(props.purpose), [props.purpose]);
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <div className={props.className ?? 'field'}>
      <label htmlFor={props.id}>{props.label}</label>
      <div className="path-field">
        <input
          id={props.id}
          className="mono"
          required={props.required ?? false}
          spellCheck={false}
          value={props.value}
          aria-describedby={`${props.id}-help`}
          onChange={(e) => props.onChange(e.target.value)}
        />
        {choose ? (
          <button
            type="button"
            onClick={() => {
              setProblem(null);
              choose(props.label, props.value).then(
                (path) => {
                  if (path) props.onChange(path);
                },
                (err: unknown) => setProblem((err as { code?: string }).code === 'VALIDATION_FAILED' ? s.notABackupFile : errorText(err)),
              );
            }}
          >
            {props.purpose === 'restore-backup' ? s.chooseFile : s.chooseFolder}
          </button>
        ) : null}
      </div>
      <p id={`${props.id}-help`} className="help">
        {props.help}
      </p>
      {problem ? <p role="alert">{problem}</p> : null}
    </div>
  );
}
