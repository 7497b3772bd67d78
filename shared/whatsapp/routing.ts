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
