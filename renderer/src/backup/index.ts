export { BackupBanner, BackupScreen } from './BackupScreen';
export { AdminStepOrRestore } from './RestoreFromBackup';
export { useBackupStrings } from './strings';
export { nativeChooser, type Chooser } from './nativeDialogs';
export { useRestoreOutcome } from './RestoreOutcome';
