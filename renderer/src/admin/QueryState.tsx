import { useI18n } from '../i18n';

/** What a section shows while its query loads or after it failed. */
export function QueryState({ query }: { query: { isPending: boolean; isError: boolean; error: unknown } }): React.JSX.Element | null {
  const { t, errorText } = useI18n();
  if (query.isError) {
    return (
      <p className="state error" role="alert">
        {errorText(query.error)}
      </p>
    );
  }
  return query.isPending ? <p className="state">{t.loading}</p> : null;
}
