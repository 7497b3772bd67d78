import { CodedError } from '../../../shared/errors';
import type { ConsentEvent, ConsentSource, ConsentStatus, KeywordLanguage, PrivacyKeywords } from '../../../shared/rpc';
import { PrivacyKeywordsSchema } from '../../../shared/rpc';
import { getSetting, setSetting } from '../db/repo/settings';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';

/**
 * A contact's consent to hear from the clinic on WhatsApp: every change is a row of
 * `consent_events` (status, source, when, who), the newest one is the current status. While a
 * patient is opted out no template goes to them; replies inside an open 24-hour window stay
 * possible (the patient wrote), as WhatsApp's own policy allows.
 */

interface EventRow {
  status: ConsentStatus;
  source: ConsentSource;
  recorded_at: number;
  recorded_by: string;
  by_name: string | null;
  note: string | null;
}

const toEvent = (r: EventRow): ConsentEvent => ({ status: r.status, source: r.source, at: r.recorded_at, by: r.recorded_by, byName: r.by_name, note: r.note });

export function consentHistory(db: Database, contactId: number): ConsentEvent[] {
  return (
    stmt(
      db,
      `SELECT e.status, e.source, e.recorded_at, e.recorded_by, u.display_name AS by_name, e.note
         FROM consent_events e LEFT JOIN users u ON u.id = e.recorded_by
        WHERE e.contact_id = ? ORDER BY e.id DESC`,
    ).all(contactId) as EventRow[]
  ).map(toEvent);
}

export function currentConsentStatus(db: Database, contactId: number): ConsentStatus {
  const row = stmt(db, 'SELECT status FROM consent_events WHERE contact_id = ? ORDER BY id DESC LIMIT 1').get(contactId) as { status: ConsentStatus } | undefined;
  return row?.status ?? 'unknown';
}

/** Records a change; returns false (and writes nothing) when the status is already that. */
export function recordConsent(
  db: Database,
  p: { contactId: number; status: ConsentStatus; source: ConsentSource; by: string; note?: string | null; now: number },
): boolean {
  if (!stmt(db, 'SELECT 1 FROM contacts WHERE id = ?').get(p.contactId)) throw new CodedError('NOT_FOUND', `There is no contact ${p.contactId}.`);
  if (currentConsentStatus(db, p.contactId) === p.status) return false;
  stmt(db, 'INSERT INTO consent_events (contact_id, status, source, recorded_at, recorded_by, note) VALUES (?, ?, ?, ?, ?, ?)').run(
    p.contactId,
    p.status,
    p.source,
    p.now,
    p.by,
    p.note ?? null,
  );
  return true;
}

/** Called by the send service before a template is queued. */
export function assertTemplateAllowed(db: Database, conversationId: number): void {
  const row = stmt(db, 'SELECT contact_id FROM conversations WHERE id = ?').get(conversationId) as { contact_id: number } | undefined;
  if (!row) return;
  if (currentConsentStatus(db, row.contact_id) === 'opted_out') {
    throw new CodedError(
      'OPTED_OUT',
      'This patient opted out of WhatsApp messages from the clinic, so templates are not sent to them. You can still reply while they have written in the last 24 hours. If the patient asks to hear from you again, record their new opt-in in the contact panel (or they can send START).',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Keywords

export const DEFAULT_KEYWORDS: PrivacyKeywords = {
  optOut: {
    nl: ['STOP', 'STOPPEN', 'AFMELDEN', 'UITSCHRIJVEN'],
    de: ['STOP', 'STOPP', 'ABMELDEN', 'ABBESTELLEN'],
    en: ['STOP', 'UNSUBSCRIBE', 'OPT OUT', 'STOP ALL'],
    fr: ['STOP', 'ARRET', 'ARRÊT', 'DESINSCRIRE', 'DÉSABONNER'],
    es: ['STOP', 'BAJA', 'CANCELAR', 'PARAR'],
  },
  optIn: {
    nl: ['START', 'AANMELDEN'],
    de: ['START', 'ANMELDEN'],
    en: ['START', 'SUBSCRIBE', 'OPT IN'],
    fr: ['START', 'INSCRIRE', 'REPRENDRE'],
    es: ['START', 'ALTA'],
  },
  access: {
    nl: ['INZAGE', 'MIJN GEGEVENS', 'INZAGEVERZOEK'],
    de: ['AUSKUNFT', 'MEINE DATEN', 'DATENAUSKUNFT'],
    en: ['MY DATA', 'ACCESS REQUEST', 'SUBJECT ACCESS REQUEST'],
    fr: ['MES DONNEES', 'MES DONNÉES', 'ACCES A MES DONNEES'],
    es: ['MIS DATOS', 'ACCESO A MIS DATOS'],
  },
};

const KEYWORDS_SETTING = 'privacy_keywords';

/** Case, accents and punctuation ignored; inner spaces collapsed: "Arrêt !" → "ARRET". */
export function normaliseKeyword(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export function loadKeywords(db: Database): PrivacyKeywords {
  const raw = getSetting(db, KEYWORDS_SETTING);
  if (raw === null) return DEFAULT_KEYWORDS;
  const parsed = PrivacyKeywordsSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : DEFAULT_KEYWORDS;
}

export function saveKeywords(db: Database, keywords: PrivacyKeywords, now: number): PrivacyKeywords {
  // A word in two lists would make one message mean two things.
  const seen = new Map<string, string>();
  for (const list of ['optOut', 'optIn', 'access'] as const) {
    for (const words of Object.values(keywords[list])) {
      for (const w of words) {
        const n = normaliseKeyword(w);
        if (n.length < 2) throw new CodedError('VALIDATION_FAILED', 'A keyword needs at least two letters or digits.');
        const other = seen.get(n);
        if (other && other !== list) throw new CodedError('VALIDATION_FAILED', `"${w.slice(0, 40)}" is in two lists (${other} and ${list}); a message must mean one thing.`);
        seen.set(n, list);
      }
    }
  }
  setSetting(db, KEYWORDS_SETTING, JSON.stringify(keywords), now);
  return keywords;
}

export type KeywordIntent = 'optOut' | 'optIn' | 'access';

/** What a whole inbound message asks for, and in which languages that word is a keyword. */
export function matchKeyword(keywords: PrivacyKeywords, text: string | null): { intent: KeywordIntent; languages: KeywordLanguage[] } | null {
  if (!text || text.length > 60) return null;
  const n = normaliseKeyword(text);
  if (n.length === 0) return null;
  for (const intent of ['optOut', 'optIn', 'access'] as const) {
    const languages = (Object.entries(keywords[intent]) as [KeywordLanguage, string[]][]).filter(([, words]) => words.some((w) => normaliseKeyword(w) === n)).map(([l]) => l);
    if (languages.length > 0) return { intent, languages };
  }
  return null;
}
