import { z } from 'zod';

/**
 * The managed policy an IT department deploys to every desk (see SECURITY.md and
 * `build/policy.schema.json`, generated from this schema by `npm run policy-schema`). Every key is
 * optional; a key that is present overrides the matching setting and is locked in the settings
 * screen. Keys are validated one by one: an invalid key is reported and ignored, the valid ones
 * still apply.
 */

// No `URL` here: shared/ runs with neither DOM nor Node globals. Host (letters, digits, dots,
// hyphens), optional port, optional path; never a user name or password.
const HttpsUrl = z
  .string()
  .max(500)
  .regex(/^https:\/\//, 'must start with https://')
  .regex(/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[^\s@]*)?$/, 'must be an https:// address without a user name or password');

export const UPDATE_CHANNELS = ['stable', 'early'] as const;
export const UpdateChannelSchema = z.enum(UPDATE_CHANNELS);
export type UpdateChannel = z.infer<typeof UpdateChannelSchema>;

/** As the privacy feature's send guard knows them (it has no "off"). */
export const SEND_GUARD_MODES = ['warn', 'block'] as const;
export const POLICY_LANGUAGES = ['en', 'nl', 'de'] as const;

export const SemverSchema = z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'must be a version such as 1.4.2');

/** One schema per key, so each is checked (and reported) on its own. */
export const policyKeys = {
  updateUrl: HttpsUrl.describe('The update server (generic provider) this desk checks for releases.'),
  updateChannel: UpdateChannelSchema.describe('stable, or early for the desks that try releases first.'),
  allowedVersion: SemverSchema.describe('The one older version this desk may be moved back to (a downgrade is refused otherwise).'),
  updateDeferralDays: z.number().int().min(0).max(60).describe('How many days an admin may put off a downloaded update before it installs at the next quit.'),
  allowedRelayUrl: HttpsUrl.describe('The only relay this desk may pair with.'),
  idleLockMinutes: z.number().int().min(1).max(60).describe('Minutes without input before a desk locks.'),
  twoFactorRequired: z.boolean().describe('Admins and auditors must use two-factor sign-in.'),
  retentionMinimumDays: z.number().int().min(1).max(7305).describe('Messages and their files are kept at least this many days before retention may remove them (the legal minimum of the retention rules).'),
  backupFolder: z.string().min(1).max(1000).describe('The folder backups are written to.'),
  sendGuardMode: z.enum(SEND_GUARD_MODES).describe('What happens when a reply looks like it holds personal data: warn, or block.'),
  languages: z.array(z.enum(POLICY_LANGUAGES)).min(1).max(POLICY_LANGUAGES.length).describe('The interface languages staff may choose from; the first is the default.'),
} as const;

export type PolicyKey = keyof typeof policyKeys;
export const POLICY_KEYS = Object.keys(policyKeys) as PolicyKey[];

export const PolicySchema = z.object(policyKeys).partial().strict().describe('Clinic Inbox managed policy');
export type Policy = z.infer<typeof PolicySchema>;

export const PolicyProblemSchema = z.object({
  /** The key at fault, or null when the whole file could not be read. */
  key: z.string().max(200).nullable(),
  message: z.string().max(500),
});
export type PolicyProblem = z.infer<typeof PolicyProblemSchema>;

export interface PolicyReading {
  policy: Policy;
  problems: PolicyProblem[];
}

/**
 * Validates a policy file's text key by key. Unreadable JSON or a non-object ignores the whole
 * file (one problem); an unknown or invalid key is ignored on its own (one problem each).
 */
export function parsePolicy(text: string | null): PolicyReading {
  if (text === null) return { policy: {}, problems: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { policy: {}, problems: [{ key: null, message: 'The policy file is not valid JSON; none of it was applied.' }] };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { policy: {}, problems: [{ key: null, message: 'The policy file must hold one JSON object; none of it was applied.' }] };
  }
  return policyFromObject(raw as Record<string, unknown>);
}

/** Validates an object of policy values key by key (the JSON file's, or the registry's translated). */
export function policyFromObject(raw: Readonly<Record<string, unknown>>): PolicyReading {
  const policy: Record<string, unknown> = {};
  const problems: PolicyProblem[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key === '$schema') continue;
    if (!Object.hasOwn(policyKeys, key)) {
      problems.push({ key: key.slice(0, 200), message: 'Not a Clinic Inbox policy key; ignored.' });
      continue;
    }
    const parsed = policyKeys[key as PolicyKey].safeParse(value);
    if (parsed.success) policy[key] = parsed.data;
    else problems.push({ key, message: `Ignored: ${parsed.error.issues[0]?.message ?? 'invalid value'}.`.slice(0, 500) });
  }
  return { policy: policy as Policy, problems };
}
