import type { ConversationSummary } from '../../../shared/rpc';

type NamedContact = Pick<ConversationSummary['contact'], 'displayName' | 'profileName' | 'waId'>;

/** The name staff gave the contact, else their WhatsApp profile name, else their number. */
export function contactLabel(c: NamedContact, unknown: string): string {
  return c.displayName || c.profileName || (c.waId ? formatNumber(c.waId) : unknown);
}

/** wa_id is the international number without "+"; shown with it so staff can read it back. */
export function formatNumber(waId: string): string {
  return /^\d+$/.test(waId) ? `+${waId}` : waId;
}

export function initials(label: string): string {
  const words = label.replace(/[^\p{L}\p{N} ]/gu, '').split(/\s+/).filter(Boolean);
  if (words.length === 0) return '#';
  return ((words[0]?.[0] ?? '') + (words.length > 1 ? (words[words.length - 1]?.[0] ?? '') : '')).toUpperCase();
}
