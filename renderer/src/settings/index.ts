export { SettingsScreen } from './SettingsScreen';
export { useSettingsStrings } from './strings';
