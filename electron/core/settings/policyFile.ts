import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, type PolicyReading } from '../../../shared/policy';

/**
 * Where IT deploys the managed policy. Windows: Group Policy writes
 * `HKLM\Software\Policies\ClinicInbox` (one value per key, documented in SECURITY.md); the app reads
 * its JSON twin `%ProgramData%\Clinic Inbox\policy.json`, which the same GPO (or Intune) deploys.
 */
export function policyLocation(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'win32') return join(env['ProgramData'] ?? 'C:\\ProgramData', 'Clinic Inbox', 'policy.json');
  if (platform === 'darwin') return '/Library/Application Support/Clinic Inbox/policy.json';
  return '/etc/clinic-inbox/policy.json';
}

export interface PolicyFileReading extends PolicyReading {
  path: string;
  found: boolean;
}

/** Reads and validates the policy file; a missing file is no policy, an unreadable one is a problem. */
export function readPolicyFile(path: string): PolicyFileReading {
  let text: string | null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { path, found: false, policy: {}, problems: [] };
    return { path, found: true, policy: {}, problems: [{ key: null, message: `The policy file could not be read (${code ?? 'error'}); none of it was applied.` }] };
  }
  return { path, found: true, ...parsePolicy(text) };
}
