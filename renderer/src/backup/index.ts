export { BackupBanner, BackupScreen } from './BackupScreen';
export { AdminStepOrRestore } from './RestoreFromBackup';
export { useBackupStrings } from './strings';
