import { z } from 'zod';
import { IdSchema, Key32Schema } from './encoding';

/** `POST /v1/enrol`: the appliance redeems a one-time code an operator issued for its tenant. */
export const ENROL_PATH = '/v1/enrol';

/** Codes are shown to people and typed by them: groups of unambiguous characters. */
export const EnrolmentCodeSchema = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$/, 'expected an enrolment code like ABCD-EFGH-JKLM-NPQR');

export const EnrolRequestSchema = z.object({
  code: EnrolmentCodeSchema,
  /** The appliance's Ed25519 device public key (raw 32 bytes, base64url): signs upgrades and checkpoints. */
  signingPublicKey: Key32Schema,
  /** The appliance's X25519 public key (raw 32 bytes, base64url): envelopes are sealed to it. */
  encryptionPublicKey: Key32Schema,
  /** A label for the operator ("Front desk PC"); never patient data. */
  label: z.string().max(80).optional(),
});
export type EnrolRequest = z.infer<typeof EnrolRequestSchema>;

export const EnrolResponseSchema = z.object({
  tenantId: IdSchema,
  applianceId: IdSchema,
  /** The relay's static X25519 key: the HPKE Auth-mode sender key the appliance pins. */
  relayEncryptionPublicKey: Key32Schema,
  /** The phone_number_ids routed to this tenant, so the appliance can show which numbers it serves. */
  phoneNumberIds: z.array(z.string().regex(/^\d{1,32}$/)),
});
export type EnrolResponse = z.infer<typeof EnrolResponseSchema>;

export const HttpErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
