export { LanguagePicker, useLanguagePolicy } from './LanguagePicker';
export { PolicyProblemsBanner } from './PolicyProblemsBanner';
export { SettingsScreen } from './SettingsScreen';
export { useSettingsStrings } from './strings';
