import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, type Policy, type PolicyReading } from '../../../shared/policy';
import { execRunner, POLICY_REGISTRY_KEY, readRegistryPolicy, type RegRunner, type RegistryReading } from './registry';

/**
 * Where IT deploys the managed policy file. On Windows it is the JSON twin of the Group Policy key
 * `HKLM\Software\Policies\ClinicInbox` (read as well; see `readManagedPolicy`).
 */
export function policyLocation(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'win32') return join(env['ProgramData'] ?? 'C:\\ProgramData', 'Clinic Inbox', 'policy.json');
  if (platform === 'darwin') return '/Library/Application Support/Clinic Inbox/policy.json';
  return '/etc/clinic-inbox/policy.json';
}

export interface PolicyFileReading extends PolicyReading {
  /** Where the policy was read from (the registry key and the file on Windows), for the settings screen. */
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

/**
 * Windows: the registry over the JSON twin, key by key. A key the registry sets validly wins; a key
 * the registry sets invalidly is reported and the file's value for it (if valid) applies; every
 * problem of both is reported.
 */
export function mergeRegistryOverFile(registry: RegistryReading, file: PolicyFileReading): PolicyFileReading {
  const found = [registry.found ? POLICY_REGISTRY_KEY : null, file.found ? file.path : null].filter((p): p is string => p !== null);
  const policy: Policy = { ...file.policy, ...registry.policy };
  return {
    path: found.length > 0 ? found.join(', ') : `${POLICY_REGISTRY_KEY}, ${file.path}`,
    found: found.length > 0,
    policy,
    problems: [...registry.problems, ...file.problems],
  };
}

export interface ManagedPolicyOptions {
  /** The policy file (the OS's location by default). */
  filePath?: string;
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
  /** How reg.exe is run (tests inject recorded output; no Windows here). */
  runReg?: RegRunner;
}

/** The managed policy of this desk: the file, and on Windows the registry key over it. Nothing else runs elsewhere. */
export async function readManagedPolicy(options: ManagedPolicyOptions = {}): Promise<PolicyFileReading> {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  const file = readPolicyFile(options.filePath ?? policyLocation(platform, env));
  if (platform !== 'win32') return file;
  return mergeRegistryOverFile(await readRegistryPolicy(options.runReg ?? execRunner, env), file);
}
