import { z } from 'zod';

/**
 * Stable error codes shared by every part. A code never changes meaning once released; the
 * message beside it is for a person and may be reworded.
 */
export const ERROR_CODES = [
  // generic
  'BAD_REQUEST',
  'INTERNAL',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'UNAVAILABLE',
  // relay
  'RELAY_UNAUTHORIZED',
  'RELAY_BAD_FRAME',
  'RELAY_REPLACED',
  'RELAY_REVOKED',
  'RELAY_CONFLICT',
  'ENROLMENT_CODE_INVALID',
  'CHECKPOINT_REGRESSION',
  'CHECKPOINT_CONFLICT',
  'CHECKPOINT_BAD_SIGNATURE',
  // appliance
  'KEYCHAIN_UNAVAILABLE',
  'DATABASE_LOCKED',
  'DATABASE_TOO_NEW',
  'ENVELOPE_INVALID',
  'UNAUTHENTICATED',
  'SESSION_LOCKED',
  'PASSWORD_CHANGE_REQUIRED',
  'ACCOUNT_LOCKED',
  'PASSWORD_REJECTED',
  'SECOND_FACTOR_INVALID',
  'FORBIDDEN',
  'VALIDATION_FAILED',
  'WINDOW_CLOSED',
  /** Meta's rules for reactions: only to a message the patient sent, not deleted, at most 30 days old. */
  'REACTION_NOT_ALLOWED',
  // privacy
  'OPTED_OUT',
  'PERSONAL_DATA_BLOCKED',
  'LEGAL_HOLD',
  'WHATSAPP_TOKEN_EXPIRED',
  'WHATSAPP_REJECTED',
  'NOT_PAIRED',
  'RECOVERY_REQUIRED',
  'RECOVERY_KEY_INVALID',
  'RECOVERY_KEY_WRONG',
  // first-run WhatsApp step, from Meta's error codes
  /** 190 without the "expired" subcode: Meta does not accept this token at all (mistyped, revoked). */
  'WHATSAPP_TOKEN_INVALID',
  /** 200/10: a working token without permission on this WhatsApp Business Account. */
  'WHATSAPP_TOKEN_NOT_FOR_ACCOUNT',
  /** 100/33: no WhatsApp Business Account with this id that the token can see. */
  'WHATSAPP_ACCOUNT_UNKNOWN',
  // booking (Google Calendar)
  /** Free/busy, asked again at booking time, shows the slot is no longer free. */
  'SLOT_TAKEN',
  'CALENDAR_NOT_CONNECTED',
  /** Google revoked the grant or it expired: an admin must connect Google Calendar again. */
  'CALENDAR_RECONNECT_NEEDED',
] as const;

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export const AppErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
});
export type AppError = z.infer<typeof AppErrorSchema>;

/** An error that carries a stable code across a process boundary. Messages never hold patient data. */
export class CodedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CodedError';
  }

  toJSON(): AppError {
    return { code: this.code, message: this.message };
  }
}
