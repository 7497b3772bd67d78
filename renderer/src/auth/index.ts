export { SignIn } from './SignIn';
export { LockScreen } from './LockScreen';
export { ChoosePassword } from './ChoosePassword';
export { MyAccount, TwoFactorRequired } from './MyAccount';
export { NewPasswordField, rejectionOf } from './PasswordField';
export { useIdleLock } from './useIdleLock';
export { AUTH_META, startSession, useSessionWatch, type EndReason } from './session';
export { codeOf } from './errors';
