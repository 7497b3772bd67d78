export { I18nProvider, useI18n } from './I18nProvider';
export { effectiveLanguage, LANGUAGES, LANGUAGE_NAMES, pickLanguage, type Language, type Strings } from './strings';
