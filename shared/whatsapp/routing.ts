import { z } from 'zod';

/**
 * The least the relay needs to read of a webhook to route it: which phone number each change
 * belongs to. Everything else passes through untouched (`loose`), so new fields Meta adds never
 * break routing. The full schema of what a change holds lives in `./webhook`.
 */
export const RoutableChangeSchema = z.looseObject({
  field: z.string(),
  value: z.looseObject({
    metadata: z.looseObject({ phone_number_id: z.string() }).optional(),
  }),
});

export const RoutableEntrySchema = z.looseObject({
  id: z.string(),
  changes: z.array(RoutableChangeSchema),
});

export const RoutableWebhookSchema = z.looseObject({
  object: z.string(),
  entry: z.array(RoutableEntrySchema),
});
export type RoutableWebhook = z.infer<typeof RoutableWebhookSchema>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Exactly what `RoutableWebhookSchema` accepts, checked in place: the relay runs this on every
 * webhook, and the schema's parse copies every object it passes through (the whole body), which
 * cost more than JSON.parse's own allocation. Kept equal to the schema by a test over mutated bodies.
 */
export function isRoutableWebhook(v: unknown): v is RoutableWebhook {
  if (!isRecord(v) || typeof v.object !== 'string' || !Array.isArray(v.entry)) return false;
  for (const entry of v.entry as unknown[]) {
    if (!isRecord(entry) || typeof entry.id !== 'string' || !Array.isArray(entry.changes)) return false;
    for (const change of entry.changes as unknown[]) {
      if (!isRecord(change) || typeof change.field !== 'string' || !isRecord(change.value)) return false;
      const metadata = change.value.metadata;
      if (metadata !== undefined && (!isRecord(metadata) || typeof metadata.phone_number_id !== 'string')) return false;
    }
  }
  return true;
}
