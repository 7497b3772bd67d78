import { useMemo } from 'react';
import { useI18n } from '../i18n';

export interface DateTimeFormat {
  /** Local date and time, to the minute. */
  local(ms: number): string;
  /** Local date and time to the second, for the audit trail. */
  localSeconds(ms: number): string;
  /** The same moment in UTC (ISO 8601), for titles and tooltips. */
  utc(ms: number): string;
}

export function useDateTime(): DateTimeFormat {
  const { lang } = useI18n();
  return useMemo(() => {
    const locale = navigator.languages.find((l) => l.toLowerCase().split('-')[0] === lang) ?? lang;
    const minutes = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
    const seconds = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
    return {
      local: (ms) => minutes.format(ms),
      localSeconds: (ms) => seconds.format(ms),
      utc: (ms) => `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}`,
    };
  }, [lang]);
}
