import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';

/**
 * The personal-data guard's one detector: identifiers in free text, found by shape AND, where the
 * identifier has one, by its check digit, so an order number or an appointment date is not taken
 * for a patient's number. Pure: the same text gives the same findings (dates of birth are judged
 * against `referenceYear`, the current year by default).
 *
 * Order matters: e-mail and IBAN first (they contain digits), then dates (an appointment date
 * claims its digits even though it is not reported), then national numbers by their check digits,
 * then phone numbers among the digit runs nothing else claimed. Every digit run is taken whole:
 * "0612345678 9" is never read as a 9-digit BSN inside a longer number.
 *
 * Confidence: 0.99 for shapes that cannot be anything else (e-mail, IBAN with checksum), 0.95 for a
 * check digit with a naming word nearby ("BSN", "NHS", "geboren"), lower without one.
 */

export type FindingKind = 'email' | 'phone' | 'iban' | 'date_of_birth' | 'bsn' | 'nhs' | 'steuer_id' | 'nir' | 'rrn';
export const FINDING_KINDS: readonly FindingKind[] = ['email', 'phone', 'iban', 'date_of_birth', 'bsn', 'nhs', 'steuer_id', 'nir', 'rrn'];

export interface Finding {
  kind: FindingKind;
  /** UTF-16 offsets into the text: `text.slice(start, end)` is the identifier. */
  start: number;
  end: number;
  confidence: number;
}

export interface DetectOptions {
  /** Dates of birth are dates at least a few years before this year. Default: the current year. */
  referenceYear?: number;
}

const EMAIL = /[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b/g;
/** Country, check digits, then groups of up to 4 with optional single spaces; trimmed until the checksum holds. */
const IBAN = /\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b/g;

const MONTHS: Record<string, number> = {};
for (const [names, n] of [
  ['jan januari january janvier januar enero jän', 1],
  ['feb februari february février fevrier februar febrero', 2],
  ['mrt maart march mars märz marz mar marzo', 3],
  ['apr april avril abril', 4],
  ['mei may mai mayo', 5],
  ['jun juni june juin junio', 6],
  ['jul juli july juillet julio', 7],
  ['aug augustus august août aout agosto', 8],
  ['sep sept september septembre septiembre', 9],
  ['okt oct oktober october octobre octubre', 10],
  ['nov november novembre noviembre', 11],
  ['dec december décembre decembre dezember dez diciembre', 12],
] as const) {
  for (const name of names.split(' ')) MONTHS[name] = n;
}
const MONTH_NAMES = Object.keys(MONTHS)
  .sort((a, b) => b.length - a.length)
  .join('|');
/** 12-03-1985, 12.03.1985, 12/3/85, 1985-03-12, 12 maart 1985, 12. März 1985, March 12, 1985, 1er mars 1985. */
const DATE = new RegExp(
  [
    String.raw`(?<d1>\d{1,2})[-./](?<m1>\d{1,2})[-./](?<y1>\d{4}|\d{2})(?![\d]|[-./]\d)`,
    String.raw`(?<y2>(?:19|20)\d{2})-(?<m2>\d{2})-(?<d2>\d{2})(?![\d]|[-./]\d)`,
    String.raw`(?<d3>\d{1,2})(?:\.|er|st|nd|rd|th)?\s+(?<mn3>${MONTH_NAMES})\.?\s+(?<y3>\d{4})(?![\d]|[-./]\d)`,
    String.raw`(?<mn4>${MONTH_NAMES})\.?\s+(?<d4>\d{1,2})(?:st|nd|rd|th)?,?\s+(?<y4>\d{4})(?![\d]|[-./]\d)`,
  ].join('|'),
  'giu',
);
/** Words that name a date of birth, within the 40 characters before the date. */
const DOB_CONTEXT = /(geboren|geboortedatum|geb\.|geb\b|birth|born|d\.o\.b|dob|geburtsdatum|geburtstag|né|née|nee le|ne le|naissance|nacimiento|nacido|nacida|jarig)/iu;

/** A maximal run of digits with single separators between groups (spaces, dots, dashes, slashes). */
const DIGIT_RUN = /(?<![\dA-Za-z])(?:\+|00)?\(?\d(?:\)?[ .\-/]?\(?\d)*(?![\dA-Za-z])/g;
/** A French NIR may carry 2A/2B (Corsica) for its department. */
const NIR_RUN = /(?<![\dA-Za-z])[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AaBb]) ?\d{3} ?\d{3} ?\d{2}(?![\dA-Za-z])/g;

const CONTEXT: Record<'bsn' | 'nhs' | 'steuer_id' | 'nir' | 'rrn', RegExp> = {
  bsn: /(bsn|burgerservice|sofi|sofinummer|citizen service)/iu,
  nhs: /\bnhs\b/iu,
  steuer_id: /(steuer|steuerid|steuer-id|identifikationsnummer|idnr|tax id|steuernummer)/iu,
  nir: /(s[ée]cu|s[ée]curit[ée] sociale|nir\b|num[ée]ro de s[ée]cu|insee|carte vitale)/iu,
  rrn: /(rijksregister|registre national|rrn\b|nationaal nummer|num[ée]ro national|insz|niss)/iu,
};
const NATIONAL_LENGTH: Record<keyof typeof CONTEXT, number> = { bsn: 9, nhs: 10, steuer_id: 11, nir: 15, rrn: 11 };
/** Before a digit run, these say it is not a personal number (orders, invoices, references). */
const NOT_PERSONAL = /(order|bestel|bestelling|bestellnummer|bestellung|factuur|rechnung|invoice|commande|facture|referentie|referenz|reference|référence|ref\.?|dossier|zaak|ticket|kenmerk|aktenzeichen|pedido|tracking|zending|sendung|colis|postcode|kamer|zimmer|room|bus|lijn)\s*(nr|no|n°|nº|nummer|number|numéro|num)?\.?\s*[:#]?\s*$/iu;


function before(text: string, start: number, span = 40): string {
  return text.slice(Math.max(0, start - span), start);
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

export function elevenTest(d: string): boolean {
  if (!/^\d{9}$/.test(d) || d === '000000000') return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += Number(d[i]) * (9 - i);
  sum -= Number(d[8]);
  return sum % 11 === 0;
}

export function nhsCheck(d: string): boolean {
  if (!/^\d{10}$/.test(d)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(d[i]) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  return check !== 10 && check === Number(d[9]);
}

/** ISO 7064 MOD 11,10 plus the rule that one digit of the first ten repeats (twice or thrice) and the rest do not. */
export function steuerIdCheck(d: string): boolean {
  if (!/^[1-9]\d{10}$/.test(d)) return false;
  const counts = new Map<string, number>();
  for (const c of d.slice(0, 10)) counts.set(c, (counts.get(c) ?? 0) + 1);
  const repeated = [...counts.values()].filter((n) => n > 1);
  if (repeated.length !== 1 || repeated[0]! > 3) return false;
  let product = 10;
  for (let i = 0; i < 10; i++) {
    let sum = (Number(d[i]) + product) % 10;
    if (sum === 0) sum = 10;
    product = (sum * 2) % 11;
  }
  let check = 11 - product;
  if (check === 10) check = 0;
  return check === Number(d[10]);
}

export function nirCheck(raw: string): boolean {
  const s = raw.replace(/\s/g, '').toUpperCase();
  if (!/^[12]\d{4}(?:\d{2}|2A|2B)\d{8}$/.test(s)) return false;
  const month = Number(s.slice(3, 5));
  if (!((month >= 1 && month <= 12) || (month >= 20 && month <= 42) || (month >= 50 && month <= 99))) return false;
  const body = s.slice(0, 13).replace('2A', '19').replace('2B', '18');
  const key = 97 - Number(BigInt(body) % 97n);
  return key === Number(s.slice(13));
}

export function rrnCheck(d: string): boolean {
  if (!/^\d{11}$/.test(d)) return false;
  const month = Number(d.slice(2, 4)) % 20;
  const day = Number(d.slice(4, 6));
  if (month > 12 || day > 31) return false;
  const first = BigInt(d.slice(0, 9));
  const check = Number(d.slice(9));
  return 97 - Number(first % 97n) === check || 97 - Number((2_000_000_000n + first) % 97n) === check;
}

interface Claim {
  start: number;
  end: number;
}

const overlaps = (claims: readonly Claim[], start: number, end: number): boolean => claims.some((c) => start < c.end && end > c.start);

function plausibleDate(day: number, month: number, year: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const days = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

function findDates(text: string, referenceYear: number, claims: Claim[], out: Finding[]): void {
  for (const m of text.matchAll(DATE)) {
    const g = m.groups!;
    const start = m.index;
    const end = start + m[0].length;
    if (overlaps(claims, start, end)) continue;
    // Digits glued to the front ("1012-03-1985") are not a date.
    if (start > 0 && /[\dA-Za-z]/.test(text[start - 1]!) && (g['d1'] ?? g['y2'] ?? g['d3']) !== undefined) continue;
    const day = Number(g['d1'] ?? g['d2'] ?? g['d3'] ?? g['d4']);
    const month = g['m1'] ?? g['m2'] ? Number(g['m1'] ?? g['m2']) : MONTHS[(g['mn3'] ?? g['mn4'])!.toLowerCase()]!;
    const rawYear = g['y1'] ?? g['y2'] ?? g['y3'] ?? g['y4']!;
    const year = rawYear.length === 2 ? (Number(rawYear) + 2000 > referenceYear ? 1900 : 2000) + Number(rawYear) : Number(rawYear);
    if (!plausibleDate(day, month, year)) continue;
    claims.push({ start, end });
    const context = DOB_CONTEXT.test(before(text, start));
    const age = referenceYear - year;
    if (context && age >= 0 && age <= 120) out.push({ kind: 'date_of_birth', start, end, confidence: 0.95 });
    // Without a naming word, only a date long past reads as a birth date (appointments are near now).
    else if (!context && age >= 16 && age <= 110) out.push({ kind: 'date_of_birth', start, end, confidence: 0.6 });
  }
}

type NationalKind = 'bsn' | 'nhs' | 'steuer_id' | 'rrn';

/** Which national numbers a digit run can be, by length and check digit; context decides between them. */
function nationalCandidates(digits: string, raw: string): NationalKind[] {
  const kinds: NationalKind[] = [];
  if (digits.length === 9 && elevenTest(digits)) kinds.push('bsn');
  // NHS numbers never begin with 0 (England 4xx/6xx/7xx, Scotland and NI 0xx are CHI/H&C, not ours) and are written 3-3-4.
  if (digits.length === 10 && digits[0] !== '0' && nhsCheck(digits) && /^(?:\d{10}|\d{3}([ -])\d{3}\1\d{4})$/.test(raw)) kinds.push('nhs');
  if (digits.length === 11) {
    if (rrnCheck(digits) && /^\d{2}[.]?\d{2}[.]?\d{2}[-. ]?\d{3}[-. ]?\d{2}$/.test(raw)) kinds.push('rrn');
    if (steuerIdCheck(digits) && /^(?:\d{11}|\d{2} \d{3} \d{3} \d{3})$/.test(raw)) kinds.push('steuer_id');
  }
  return kinds;
}

/** Separators a national number is written with: none, or the same one between regular groups. */
function nationalShape(raw: string): boolean {
  if (/^[+(]/.test(raw) || raw.includes('/')) return false;
  return /^\d+$/.test(raw) || /^\d+(?:[ .-]\d+)+$/.test(raw);
}

/** Countries to try for a national-format number, by its digit count (trunk 0 included), likeliest first. */
function countriesFor(length: number): readonly CountryCode[] {
  if (length === 10) return ['NL', 'FR', 'BE', 'CH', 'GB', 'DE', 'AT'];
  if (length === 11) return ['GB', 'DE', 'AT'];
  if (length === 9) return ['BE', 'DE', 'AT'];
  return ['DE', 'AT'];
}

/** Parsing with full metadata costs tens of microseconds; patients' numbers repeat, so answers are kept (bounded). */
const phoneVerdicts = new Map<string, boolean>();

function phoneAt(raw: string): boolean {
  const compact = raw.replace(/[\s().\-/]/g, '');
  const known = phoneVerdicts.get(compact);
  if (known !== undefined) return known;
  let valid: boolean;
  if (compact.startsWith('+') || compact.startsWith('00')) {
    valid = parsePhoneNumberFromString(compact.startsWith('00') ? `+${compact.slice(2)}` : compact)?.isValid() ?? false;
  } else if (!compact.startsWith('0') || compact.length < 9 || compact.length > 13) {
    // National format in every country the clinics serve (but Spain, whose numbers go with +34) begins with the trunk prefix 0.
    valid = false;
  } else {
    valid = countriesFor(compact.length).some((country) => parsePhoneNumberFromString(compact, country)?.isValid() ?? false);
  }
  if (phoneVerdicts.size >= 5000) phoneVerdicts.clear();
  phoneVerdicts.set(compact, valid);
  return valid;
}

function countDigits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

export function detectPersonalData(text: string, options: DetectOptions = {}): Finding[] {
  const referenceYear = options.referenceYear ?? new Date().getUTCFullYear();
  const out: Finding[] = [];
  const claims: Claim[] = [];
  if (text.length === 0) return out;

  if (text.includes('@')) {
    for (const m of text.matchAll(EMAIL)) {
      out.push({ kind: 'email', start: m.index, end: m.index + m[0].length, confidence: 0.99 });
      claims.push({ start: m.index, end: m.index + m[0].length });
    }
  }
  if (!/\d/.test(text)) return out;

  for (const m of /[A-Za-z]{2}\d{2}/.test(text) ? text.matchAll(IBAN) : []) {
    if (overlaps(claims, m.index, m.index + m[0].length)) continue;
    // The regex is greedy over the words after the IBAN; shorten until the checksum holds.
    let candidate = m[0];
    while (candidate.replace(/ /g, '').length >= 15) {
      if (/[A-Za-z0-9]$/.test(candidate) && isValidIBAN(electronicFormatIBAN(candidate.toUpperCase()) ?? '')) {
        out.push({ kind: 'iban', start: m.index, end: m.index + candidate.length, confidence: 0.99 });
        claims.push({ start: m.index, end: m.index + candidate.length });
        break;
      }
      candidate = candidate.slice(0, -1).trimEnd();
    }
  }

  // Every date form has a four-digit year or two separators between digits; most messages have neither.
  if (/\d{4}|\d[-./]\d{1,2}[-./]\d/.test(text)) findDates(text, referenceYear, claims, out);

  // A NIR has 13 digits and its key; skip the scan unless the text holds that many.
  const digitCount = countDigits(text);
  for (const m of digitCount >= 14 ? text.matchAll(NIR_RUN) : []) {
    if (overlaps(claims, m.index, m.index + m[0].length) || !nirCheck(m[0])) continue;
    const context = CONTEXT.nir.test(before(text, m.index));
    out.push({ kind: 'nir', start: m.index, end: m.index + m[0].length, confidence: context ? 0.97 : 0.9 });
    claims.push({ start: m.index, end: m.index + m[0].length });
  }

  for (const m of digitCount >= 9 ? text.matchAll(DIGIT_RUN) : []) {
    const raw = m[0];
    const start = m.index;
    const end = start + raw.length;
    if (overlaps(claims, start, end)) continue;
    const digits = digitsOf(raw);
    if (digits.length < 9) continue;
    const prefix = before(text, start);
    const negative = NOT_PERSONAL.test(prefix);
    const national = nationalShape(raw) && !negative ? nationalCandidates(digits, raw) : [];
    if (national.length > 0) {
      const named = national.find((k) => CONTEXT[k].test(prefix));
      const kind = named ?? national[0]!;
      out.push({ kind, start, end, confidence: named ? 0.95 : 0.7 });
      claims.push({ start, end });
      continue;
    }
    // A number named as a national number that fails its check digit is a mistyped one, not a phone.
    const namedNational = (Object.keys(CONTEXT) as (keyof typeof CONTEXT)[]).some((k) => NATIONAL_LENGTH[k] === digits.length && CONTEXT[k].test(before(text, start, 24)));
    if (!negative && !namedNational && phoneAt(raw)) {
      out.push({ kind: 'phone', start, end, confidence: 0.9 });
      claims.push({ start, end });
    }
  }

  return out.sort((a, b) => a.start - b.start);
}

/** The text with every finding replaced by "•••" (the inbox preview, anything shown outside the thread). */
export function maskPersonalData(text: string, findings: readonly Finding[] = detectPersonalData(text)): string {
  if (findings.length === 0) return text;
  let masked = '';
  let at = 0;
  for (const f of findings) {
    masked += text.slice(at, f.start) + '•••';
    at = f.end;
  }
  return masked + text.slice(at);
}
