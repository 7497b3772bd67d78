import { z } from 'zod';

/**
 * `patient.json` in a patient's export (GDPR art. 15 access, art. 20 portability): everything the
 * appliance holds about one patient, in a documented, versioned shape. A reader checks `schema`
 * and `version` first; version 1 is described field by field in `privacy/README.md`. Changing a
 * field's meaning is a new version; adding an optional field is not.
 */
export const PATIENT_EXPORT_SCHEMA = 'clinic-inbox/patient-export';
export const PATIENT_EXPORT_VERSION = 1;

const Ms = z.number().int();

export const ExportConsentSchema = z.object({
  status: z.enum(['unknown', 'opted_in', 'opted_out']),
  source: z.string(),
  at: Ms,
  by: z.string(),
  note: z.string().nullable(),
});

export const ExportMessageSchema = z.object({
  id: z.number().int(),
  wamid: z.string().nullable(),
  direction: z.enum(['inbound', 'outbound']),
  type: z.string(),
  text: z.string().nullable(),
  /** WhatsApp's message as stored (buttons, locations, template parameters …). */
  content: z.unknown(),
  sentAt: Ms,
  receivedAt: Ms,
  status: z.string(),
  statusAt: Ms.nullable(),
  error: z.object({ code: z.number().int().nullable(), title: z.string().nullable() }).nullable(),
  /** The staff member who sent it (user id), null for the patient's messages and automatic replies. */
  author: z.string().nullable(),
  replyToWamid: z.string().nullable(),
  /** Path of the file inside the zip (`media/…`), null when no file is stored. */
  media: z
    .object({ file: z.string().nullable(), mimeType: z.string().nullable(), filename: z.string().nullable(), size: z.number().int().nullable(), sha256: z.string().nullable(), state: z.string() })
    .nullable(),
  reactions: z.array(z.object({ emoji: z.string(), fromClinic: z.boolean(), at: Ms })),
  statusHistory: z.array(z.object({ status: z.string(), at: Ms, errorCode: z.number().int().nullable() })),
});

export const ExportConversationSchema = z.object({
  id: z.number().int(),
  /** The clinic's WhatsApp number the patient wrote to (Meta's phone-number id). */
  phoneNumberId: z.string(),
  status: z.string(),
  assignedTo: z.string().nullable(),
  createdAt: Ms,
  lastActivityAt: Ms,
  messages: z.array(ExportMessageSchema),
});

export const PatientExportSchema = z.object({
  schema: z.literal(PATIENT_EXPORT_SCHEMA),
  version: z.literal(PATIENT_EXPORT_VERSION),
  exportedAt: Ms,
  exportedBy: z.string(),
  contact: z.object({
    id: z.number().int(),
    waId: z.string().nullable(),
    businessScopedUserId: z.string().nullable(),
    parentBusinessScopedUserId: z.string().nullable(),
    username: z.string().nullable(),
    profileName: z.string().nullable(),
    displayName: z.string().nullable(),
    notes: z.string(),
    createdAt: Ms,
    updatedAt: Ms,
  }),
  /** Oldest first. */
  consent: z.array(ExportConsentSchema),
  requests: z.array(
    z.object({ id: z.number().int(), kind: z.string(), via: z.string(), receivedAt: Ms, dueAt: Ms, doneAt: Ms.nullable(), outcome: z.string().nullable() }),
  ),
  legalHold: z.object({ reason: z.string(), setAt: Ms }).nullable(),
  conversations: z.array(ExportConversationSchema),
});
export type PatientExport = z.infer<typeof PatientExportSchema>;
