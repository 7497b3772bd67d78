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
  /**
   * A restore's database did not open, and neither did the database from before it once put back:
   * the core is stopped with both files kept in the data folder, for the IT admin.
   */
  'RESTORE_ROLLBACK_FAILED',
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

/** Why the password policy refused a password (PASSWORD_REJECTED's `details.reason`). */
export const PASSWORD_REJECTIONS = ['too_short', 'too_long', 'common', 'contains_name', 'repeated', 'unchanged'] as const;
export const PasswordRejectionSchema = z.enum(PASSWORD_REJECTIONS);
export type PasswordRejection = z.infer<typeof PasswordRejectionSchema>;

/**
 * What a window needs to word an error in its own language, beside the core's English message: a
 * machine-readable reason and the numbers the sentence names. Never data from a patient or a secret.
 */
export const ErrorDetailsSchema = z.object({
  reason: z.string().max(40),
  min: z.number().int().nonnegative().optional(),
  max: z.number().int().nonnegative().optional(),
});
export type ErrorDetails = z.infer<typeof ErrorDetailsSchema>;

export const AppErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  details: ErrorDetailsSchema.optional(),
});
export type AppError = z.infer<typeof AppErrorSchema>;

/** An error that carries a stable code across a process boundary. Messages never hold patient data. */
export class CodedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = 'CodedError';
  }

  toJSON(): AppError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
