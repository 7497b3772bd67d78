import { z } from 'zod';

/**
 * What every feature's slice of the RPC contract is built from: roles, audit actions, the common
 * field shapes and `method()`, which records who may call a method and what it audits.
 */
export const ROLES = ['receptionist', 'admin', 'auditor'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

/** NEN 7513's kinds of action, as the audit log records them. */
export const AUDIT_ACTIONS = [
  'create',
  'read',
  'update',
  'delete',
  'export',
  'login',
  'logout',
  'login_failed',
  'lock',
  'unlock',
  'send',
  'configure',
  'break_glass',
  'revoke',
  'alert',
] as const;
export const AuditActionSchema = z.enum(AUDIT_ACTIONS);
export type AuditAction = z.infer<typeof AuditActionSchema>;

export const Id = z.number().int().positive();
export const Cursor = z.string().max(200);
export const Limit = z.number().int().min(1).max(200);

/** Roles that work in the inbox. Admins see patient text only when they also hold `receptionist`. */
export const STAFF = ['receptionist'] as const;

/**
 * Who may call a method:
 * - `roles`: a signed-in, unlocked session holding at least one of them;
 * - `signedOut`: also a connection that has not signed in (sign-in itself, `session.whoami`);
 * - `whileLocked`: also a session whose desk is locked (unlock, sign-out);
 * - `whilePasswordChange`: also a session that must set its own password first (changing it,
 *   sign-out);
 * - `breakGlass`: a signed-in user without the roles may still call it for a patient they were
 *   granted emergency access to (`access.breakGlass`); every patient the call concerns is checked.
 */
export interface MethodAccess {
  roles: readonly Role[];
  signedOut?: true;
  whileLocked?: true;
  whilePasswordChange?: true;
  breakGlass?: true;
}

export interface MethodDef extends MethodAccess {
  input: z.ZodType;
  output: z.ZodType;
  /** Recorded in the audit log, with the patient (contact) it concerns, when set. */
  audit?: AuditAction;
}

export function method<const D extends MethodDef>(def: D): D {
  return def;
}
