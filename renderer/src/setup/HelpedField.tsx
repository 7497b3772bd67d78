import type { InputHTMLAttributes, ReactNode } from 'react';

/** A field's own error, tied to it for screen readers (aria-describedby + aria-invalid on the input). */
export function FieldError({ id, text }: { id: string; text: string | null }): React.JSX.Element | null {
  return text ? (
    <p id={id} className="form-error field-error" role="alert">
      {text}
    </p>
  ) : null;
}

type Props = InputHTMLAttributes<HTMLInputElement> & {
  id: string;
  label: string;
  help: ReactNode;
  /** The field's own error (undefined: the field has none to show). Its element is `${id}-error`. */
  error?: string | null;
  /** Shown below the help text, e.g. a live status. */
  children?: ReactNode;
};

/**
 * A labelled setup input with its help text (`${id}-help`) and, where it can fail on its own, its
 * error: both read out with the input, and the input marked invalid while the error shows.
 */
export function HelpedField({ id, label, help, error, children, ...input }: Props): React.JSX.Element {
  const errorId = `${id}-error`;
  const helpId = `${id}-help`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} autoComplete="off" {...input} aria-describedby={error ? `${errorId} ${helpId}` : helpId} aria-invalid={error ? true : undefined} />
      {error === undefined ? null : <FieldError id={errorId} text={error} />}
      <p id={helpId} className="help">
        {help}
      </p>
      {children}
    </div>
  );
}
