export { SetupWizard } from './SetupWizard';
export { RestoreAccess } from './RestoreAccess';
