import { execFile } from 'node:child_process';
import { win32 } from 'node:path';
import { policyFromObject, type PolicyKey, type PolicyProblem, type PolicyReading } from '../../../shared/policy';

/**
 * The managed policy on Windows as Group Policy (or Intune's registry CSP) writes it:
 * `HKLM\Software\Policies\ClinicInbox`, one value per policy key. Read with
 * `reg query "<key>" /s` (no native module, no shell) and translated here into the same object the
 * JSON file holds, so the one zod schema validates both. Output format as reg.exe writes it (Wine's
 * reg tests record it byte for byte): a blank line, the full key path, then one line per value,
 * `    <name>    <TYPE>    <data>`, four spaces between fields; REG_DWORD data is `0x` hex,
 * REG_MULTI_SZ items are joined by a literal `\0`; each subkey follows as its own block.
 */
export const POLICY_REGISTRY_KEY = 'HKLM\\Software\\Policies\\ClinicInbox';
const FULL_KEY = 'HKEY_LOCAL_MACHINE\\Software\\Policies\\ClinicInbox';

/** What each policy key is in the registry: the admin's table in docs/it-admin.md follows this. */
export type RegistryKind = 'string' | 'number' | 'boolean' | 'list';
export const REGISTRY_KINDS: Record<PolicyKey, RegistryKind> = {
  updateUrl: 'string',
  updateChannel: 'string',
  allowedVersion: 'string',
  updateDeferralDays: 'number',
  allowedRelayUrl: 'string',
  idleLockMinutes: 'number',
  twoFactorRequired: 'boolean',
  retentionMinimumDays: 'number',
  backupFolder: 'string',
  sendGuardMode: 'string',
  languages: 'list',
};
export const REGISTRY_TYPES: Record<RegistryKind, string> = { string: 'REG_SZ or REG_EXPAND_SZ', number: 'REG_DWORD', boolean: 'REG_DWORD (1 on, 0 off)', list: 'REG_MULTI_SZ' };

export interface RegValue {
  type: string;
  data: string;
}
export interface RegKey {
  values: Map<string, RegValue>;
  /** By the subkey's name (its last path part), as reg.exe spells it. */
  subkeys: Map<string, RegKey>;
}

const emptyKey = (): RegKey => ({ values: new Map(), subkeys: new Map() });
const VALUE_LINE = /^ {4}(.*?) {4}(REG_[A-Z0-9_]+)(?: {4}(.*))?$/;

/**
 * Parses `reg query <root> /s` output into the root key and its subkeys. Lines it does not know
 * (a trailing "End of search" on some versions, blank lines) are skipped; a value line before any key
 * path, or under a path outside the root, is ignored. Null when the root's own header is missing.
 */
export function parseRegQuery(output: string, root: string = FULL_KEY): RegKey | null {
  const top = emptyKey();
  let seenRoot = false;
  let current: RegKey | null = null;
  const rootLower = root.toLowerCase();
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.replace(/\r$/, '');
    const value = VALUE_LINE.exec(line);
    if (value) {
      // Data keeps its own inner spaces; reg.exe pads nothing after it, recorders may trim.
      current?.values.set(value[1]!, { type: value[2]!, data: value[3] ?? '' });
      continue;
    }
    if (line.trim() === '' || line.startsWith(' ')) continue;
    const path = line.trim().replace(/^HKLM\\/i, 'HKEY_LOCAL_MACHINE\\');
    const lower = path.toLowerCase();
    if (lower === rootLower) {
      seenRoot = true;
      current = top;
    } else if (lower.startsWith(`${rootLower}\\`)) {
      current = top;
      for (const part of path.slice(root.length + 1).split('\\')) {
        let next = current.subkeys.get(part);
        if (!next) current.subkeys.set(part, (next = emptyKey()));
        current = next;
      }
    } else current = null;
  }
  return seenRoot ? top : null;
}

/** `%Name%` from the environment, case-insensitively as Windows does; an unknown name stays as written. */
export function expandEnvironment(text: string, env: NodeJS.ProcessEnv): string {
  const lookup = new Map(Object.entries(env).map(([k, v]) => [k.toLowerCase(), v]));
  return text.replace(/%([^%\s]+)%/g, (whole, name: string) => lookup.get(name.toLowerCase()) ?? whole);
}

type Translated = { ok: true; value: unknown } | { ok: false; message: string };

function translate(kind: RegistryKind, v: RegValue, env: NodeJS.ProcessEnv): Translated {
  const want = (): Translated => ({ ok: false, message: `must be ${REGISTRY_TYPES[kind]} (found ${v.type})` });
  if (v.data.includes('\uFFFD')) return { ok: false, message: 'holds characters reg.exe could not pass on; set this key in the JSON twin policy.json instead' };
  if (v.data.trim() === '' && v.type !== 'REG_DWORD' && v.type !== 'REG_QWORD') return { ok: false, message: 'is empty' };
  switch (kind) {
    case 'string':
      if (v.type === 'REG_SZ') return { ok: true, value: v.data };
      if (v.type === 'REG_EXPAND_SZ') return { ok: true, value: expandEnvironment(v.data, env) };
      return want();
    case 'number':
    case 'boolean': {
      if (v.type !== 'REG_DWORD' && v.type !== 'REG_QWORD') return want();
      if (!/^0x[0-9a-f]+$/i.test(v.data.trim())) return { ok: false, message: `is not a number (${v.type})` };
      const n = Number.parseInt(v.data.trim().slice(2), 16);
      if (kind === 'number') return { ok: true, value: n };
      return n === 0 || n === 1 ? { ok: true, value: n === 1 } : { ok: false, message: 'must be 1 (on) or 0 (off)' };
    }
    case 'list':
      if (v.type !== 'REG_MULTI_SZ') return want();
      return { ok: true, value: v.data.split('\\0').filter((item) => item !== '') };
  }
}

const atRegistry = (key: string, message: string): PolicyProblem => ({ key: key.slice(0, 200), message: `In the registry: ${message}; ignored.`.slice(0, 500) });

/**
 * The registry key's values as policy: names matched to policy keys without regard to case (as the
 * registry itself treats them), each value translated by the key's kind, then validated key by key
 * by the schema. A list may also be a subkey of numbered REG_SZ values (an ADMX `<list>` element
 * writes it that way), read in the order of their numbers. Anything else is reported and ignored.
 */
export function policyFromRegistry(key: RegKey, env: NodeJS.ProcessEnv = {}): PolicyReading {
  const byLower = new Map((Object.keys(REGISTRY_KINDS) as PolicyKey[]).map((k) => [k.toLowerCase(), k]));
  const raw: Record<string, unknown> = {};
  const problems: PolicyProblem[] = [];
  for (const [name, value] of key.values) {
    const policyKey = byLower.get(name.toLowerCase());
    if (!policyKey) {
      problems.push(atRegistry(name, `${name} is not a Clinic Inbox policy value`));
      continue;
    }
    const t = translate(REGISTRY_KINDS[policyKey], value, env);
    if (t.ok) raw[policyKey] = t.value;
    else problems.push(atRegistry(policyKey, `${name} ${t.message}`));
  }
  for (const [name, sub] of key.subkeys) {
    const policyKey = byLower.get(name.toLowerCase());
    if (!policyKey || REGISTRY_KINDS[policyKey] !== 'list' || sub.subkeys.size > 0) {
      problems.push(atRegistry(`${name}\\`, `the subkey ${name} is not a Clinic Inbox policy list`));
      continue;
    }
    if (raw[policyKey] !== undefined) {
      problems.push(atRegistry(policyKey, `${policyKey} is set both as a value and as a subkey; the subkey`));
      continue;
    }
    const items = [...sub.values].sort(([a], [b]) => Number(a) - Number(b));
    if (items.some(([n, v]) => !/^\d+$/.test(n) || v.type !== 'REG_SZ')) {
      problems.push(atRegistry(policyKey, `the subkey ${name} must hold REG_SZ values named 1, 2, 3…`));
      continue;
    }
    raw[policyKey] = items.map(([, v]) => v.data).filter((d) => d !== '');
  }
  const checked = policyFromObject(raw);
  return { policy: checked.policy, problems: [...problems, ...checked.problems.map((p) => ({ ...p, message: `In the registry: ${p.message}`.slice(0, 500) }))] };
}

/** Runs a program without a shell and hands back its exit code and raw output. */
export type RegRunner = (file: string, args: readonly string[], options: { timeoutMs: number }) => Promise<{ code: number; stdout: Uint8Array }>;

export const execRunner: RegRunner = (file, args, { timeoutMs }) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { encoding: 'buffer', timeout: timeoutMs, windowsHide: true, maxBuffer: 1024 * 1024, shell: false }, (err, stdout) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout });
    });
  });

export interface RegistryReading extends PolicyReading {
  found: boolean;
}

const REG_TIMEOUT_MS = 5_000;

/**
 * Reads the policy key through `reg.exe` (by its full path under %SystemRoot%, never a PATH
 * lookup). Exit code 1 is reg.exe's "no such key" (its message is in the OS's language, so it is
 * not matched): no registry policy. A reg.exe that fails otherwise or runs past the timeout is a
 * problem reported for the whole key; the JSON twin still applies.
 */
export async function readRegistryPolicy(run: RegRunner, env: NodeJS.ProcessEnv): Promise<RegistryReading> {
  const reg = win32.join(env['SystemRoot'] ?? env['SYSTEMROOT'] ?? 'C:\\Windows', 'System32', 'reg.exe');
  let result: { code: number; stdout: Uint8Array };
  try {
    result = await run(reg, ['query', POLICY_REGISTRY_KEY, '/s'], { timeoutMs: REG_TIMEOUT_MS });
  } catch (err) {
    const why = (err as { killed?: boolean }).killed ? 'timed out' : ((err as NodeJS.ErrnoException).code ?? 'failed');
    return { found: false, policy: {}, problems: [{ key: null, message: `The registry policy could not be read (reg.exe ${why}); none of it was applied.` }] };
  }
  if (result.code === 1) return { found: false, policy: {}, problems: [] };
  if (result.code !== 0) return { found: false, policy: {}, problems: [{ key: null, message: `The registry policy could not be read (reg.exe exit ${result.code}); none of it was applied.` }] };
  // reg.exe writes in the console's code page; anything beyond ASCII that is not valid UTF-8 turns into U+FFFD and that value is refused.
  const key = parseRegQuery(new TextDecoder('utf-8').decode(result.stdout));
  if (!key) return { found: false, policy: {}, problems: [{ key: null, message: 'The registry policy could not be read (unexpected reg.exe output); none of it was applied.' }] };
  return { found: true, ...policyFromRegistry(key, env) };
}
