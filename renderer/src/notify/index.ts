export { askNotificationPermission, useSoundSetting, useUnreadSignals } from './useUnreadSignals';
