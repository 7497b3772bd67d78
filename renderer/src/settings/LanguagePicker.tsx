import { useQuery } from '@tanstack/react-query';
import { useLayoutEffect } from 'react';
import { LANGUAGE_NAMES, useI18n, type Language } from '../i18n';
import { useRpc } from '../rpc';
import { PolicyLock } from './PolicyLock';

/**
 * Asks the core once which languages the organisation allows and restricts the window to them
 * (before paint, so a desk never flashes a language it may not use). True while the answer is out.
 */
export function useLanguagePolicy(): { pending: boolean } {
  const rpc = useRpc();
  const { restrict } = useI18n();
  const query = useQuery({ queryKey: ['settings', 'languages'], queryFn: () => rpc.call('settings.languages', {}), staleTime: Infinity });
  const allowed = query.data?.allowed ?? null;
  useLayoutEffect(() => restrict(allowed), [allowed, restrict]);
  return { pending: query.isPending };
}

/**
 * The one language switch (top bar, first run, sign-in): only the languages the policy allows;
 * with one allowed, that language shown with the padlock instead of a choice.
 */
export function LanguagePicker({ id, visibleLabel = false }: { id: string; visibleLabel?: boolean }): React.JSX.Element {
  const { t, lang, setLang, allowed } = useI18n();
  const options = (allowed ?? (Object.keys(LANGUAGE_NAMES) as Language[])).map((code) => [code, LANGUAGE_NAMES[code]] as const);
  if (options.length === 1) {
    return (
      <span className="language-picker locked" data-testid="language-locked">
        <span className={visibleLabel ? undefined : 'visually-hidden'}>{t.language}: </span>
        <span className="language-name">{LANGUAGE_NAMES[lang]}</span>
        <PolicyLock />
      </span>
    );
  }
  return (
    <span className="language-picker">
      <label htmlFor={id} className={visibleLabel ? undefined : 'visually-hidden'}>
        {t.language}
      </label>
      <select id={id} value={lang} onChange={(e) => setLang(e.target.value as Language)}>
        {options.map(([code, name]) => (
          <option key={code} value={code}>
            {name}
          </option>
        ))}
      </select>
    </span>
  );
}
