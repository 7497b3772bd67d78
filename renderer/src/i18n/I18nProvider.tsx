import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { ErrorCode } from '../../../shared/errors';
import { effectiveLanguage, LANGUAGES, type Language, type Strings } from './strings';

interface I18n {
  t: Strings;
  lang: Language;
  setLang(lang: Language): void;
  /** The languages staff may choose from (the organisation's policy, first the default); null: all. */
  allowed: readonly Language[] | null;
  /** Set once the core says what the policy allows. */
  restrict(allowed: readonly Language[] | null): void;
  /** A message a person can act on for an RPC failure: ours by code when we have one, else the core's. */
  errorText(err: unknown): string;
  formatTime(ms: number): string;
  formatDay(ms: number): string;
  /** Compact, for lists: the time today, "Yesterday", the weekday this week, else the date. */
  formatWhen(ms: number): string;
}

const I18nContext = createContext<I18n | null>(null);
const STORAGE_KEY = 'clinic-inbox.language';

export function I18nProvider({ children }: { children: ReactNode }): React.JSX.Element {
  const [saved, setSaved] = useState<Language | null>(() => {
    const stored = localStorage.getItem(STORAGE_KEY);
    return stored && stored in LANGUAGES ? (stored as Language) : null;
  });
  const [allowed, setAllowed] = useState<readonly Language[] | null>(null);
  const lang = effectiveLanguage(saved, allowed, navigator.languages);
  const setLang = useCallback(
    (next: Language) => {
      if (allowed && !allowed.includes(next)) return;
      localStorage.setItem(STORAGE_KEY, next);
      setSaved(next);
    },
    [allowed],
  );
  const restrict = useCallback((next: readonly Language[] | null) => setAllowed((prev) => (prev?.join() === next?.join() ? prev : next)), []);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const value = useMemo<I18n>(() => {
    const t = LANGUAGES[lang];
    // The OS's regional variant when it matches (en-GB keeps a 24-hour clock), else the bare language.
    const locale = navigator.languages.find((l) => l.toLowerCase().split('-')[0] === lang) ?? lang;
    const time = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
    const day = new Intl.DateTimeFormat(locale, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
    const weekday = new Intl.DateTimeFormat(locale, { weekday: 'short' });
    const shortDate = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short' });
    const shortDateYear = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', year: 'numeric' });
    const startOf = (x: Date): number => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const daysAgo = (d: Date): number => Math.round((startOf(new Date()) - startOf(d)) / 86_400_000);
    return {
      t,
      lang,
      setLang,
      allowed,
      restrict,
      errorText(err) {
        const code = (err as { code?: ErrorCode } | null)?.code;
        const key = `err_${code ?? ''}` as keyof Strings;
        const mine = t[key];
        if (typeof mine === 'string') return mine;
        return err instanceof Error && err.message ? err.message : t.errorGeneric;
      },
      formatTime: (ms) => time.format(ms),
      formatDay(ms) {
        const d = new Date(ms);
        const diff = daysAgo(d);
        if (diff === 0) return t.today;
        if (diff === 1) return t.yesterday;
        return day.format(d);
      },
      formatWhen(ms) {
        const d = new Date(ms);
        const diff = daysAgo(d);
        if (diff <= 0) return time.format(d);
        if (diff === 1) return t.yesterday;
        if (diff < 7) return weekday.format(d);
        return (d.getFullYear() === new Date().getFullYear() ? shortDate : shortDateYear).format(d);
      },
    };
  }, [lang, setLang, allowed, restrict]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const i18n = useContext(I18nContext);
  if (!i18n) throw new Error('useI18n outside I18nProvider');
  return i18n;
}
