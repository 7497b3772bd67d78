import { CodedError } from '../../../shared/errors';
import type { PersonalDataFinding, SendGuardMode } from '../../../shared/rpc';
import { getSetting, setSetting } from '../db/repo/settings';
import type { Database } from '../db/types';
import { detectPersonalData } from './detector';

/**
 * The send guard: before staff send free text, identifiers in it are found. In `warn` mode (the
 * default) the composer shows them and asks to confirm, and the core sends what was confirmed; in
 * `block` mode the core itself refuses, so no window or script can send one. Block is lifted only
 * by an admin switching back to warn (`privacy.updateSettings`, audited); there is no per-message
 * override, since "block" that one click undoes would be a warning.
 */

const MODE_SETTING = 'privacy_send_guard';

export function sendGuardMode(db: Database): SendGuardMode {
  return getSetting(db, MODE_SETTING) === 'block' ? 'block' : 'warn';
}

export function setSendGuardMode(db: Database, mode: SendGuardMode, now: number): void {
  setSetting(db, MODE_SETTING, mode, now);
}

export function checkOutgoing(db: Database, text: string): { findings: PersonalDataFinding[]; mode: SendGuardMode; blocked: boolean } {
  const findings = detectPersonalData(text);
  const mode = sendGuardMode(db);
  return { findings, mode, blocked: mode === 'block' && findings.length > 0 };
}

/** Called for every text and caption staff send; refuses only in block mode. Names kinds, never the values. */
export function guardOutgoingText(db: Database, text: string | undefined | null): void {
  if (!text || sendGuardMode(db) !== 'block') return;
  const findings = detectPersonalData(text);
  if (findings.length === 0) return;
  const kinds = [...new Set(findings.map((f) => f.kind.replace(/_/g, ' ')))].join(', ');
  throw new CodedError(
    'PERSONAL_DATA_BLOCKED',
    `This message contains ${findings.length === 1 ? 'an identifier' : `${findings.length} identifiers`} (${kinds}). The clinic does not allow sending identifiers over WhatsApp: remove the highlighted part and send again, or ask an admin.`,
  );
}
