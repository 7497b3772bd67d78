/**
 * Writes `labelled.jsonl`, the personal-data detector's labelled set: clinic messages in nl/de/en/fr
 * with every identifier's span marked, and near-misses left unmarked (order and invoice numbers,
 * appointment dates, times, amounts, postcodes, numbers one digit off their check digit, IBANs with
 * wrong check digits). The labels come from how each value was MADE here (a BSN built to pass the
 * eleven-test, an order number as such), never from the detector, and phone numbers are checked
 * against the real numbering plans. Seeded, so the file is the same on every run:
 *
 *   npx tsx electron/core/privacy/testdata/generateLabelled.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeIBAN, isValidIBAN } from 'ibantools';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { FindingKind } from '../detector';

let seed = 20260511;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
const digits = (n: number) => Array.from({ length: n }, () => int(0, 9)).join('');
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function bsnDigits(): string {
  for (;;) {
    const d = String(int(1, 9)) + digits(7);
    let sum = 0;
    for (let i = 0; i < 8; i++) sum += Number(d[i]) * (9 - i);
    const check = sum % 11;
    if (check < 10) return d + check;
  }
}
function nhsDigits(): string {
  for (;;) {
    const d = String(int(1, 9)) + digits(8);
    let sum = 0;
    for (let i = 0; i < 9; i++) sum += Number(d[i]) * (10 - i);
    let check = 11 - (sum % 11);
    if (check === 11) check = 0;
    if (check !== 10) return d + check;
  }
}
function steuerDigits(): string {
  for (;;) {
    const pool = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].sort(() => rand() - 0.5);
    const body = pool.slice(0, 9);
    body.push(body[int(0, 8)]!);
    body.sort(() => rand() - 0.5);
    if (body[0] === 0) continue;
    let product = 10;
    for (let i = 0; i < 10; i++) {
      let sum = (body[i]! + product) % 10;
      if (sum === 0) sum = 10;
      product = (sum * 2) % 11;
    }
    let check = 11 - product;
    if (check === 10) check = 0;
    return body.join('') + check;
  }
}
function rrnDigits(): string {
  const year = int(1940, 2015);
  const first = `${pad(year % 100)}${pad(int(1, 12))}${pad(int(1, 28))}${pad(int(1, 997), 3)}`;
  const n = BigInt(first) + (year >= 2000 ? 2_000_000_000n : 0n);
  return first + pad(97 - Number(n % 97n));
}
function nirString(): string {
  const body = `${int(1, 2)}${pad(int(40, 99))}${pad(int(1, 12))}${pad(int(1, 95))}${pad(int(1, 999), 3)}${pad(int(1, 999), 3)}`;
  return body + pad(97 - Number(BigInt(body) % 97n));
}
const offByOne = (d: string) => d.slice(0, -1) + String((Number(d.at(-1)) + int(1, 8)) % 10);

const group = (d: string, sizes: number[], sep: string) => {
  const parts: string[] = [];
  let at = 0;
  for (const s of sizes) {
    parts.push(d.slice(at, at + s));
    at += s;
  }
  return parts.join(sep);
};

const bsn = (d = bsnDigits()) => pick([d, group(d, [4, 2, 3], '.'), group(d, [3, 3, 3], ' ')]);
const nhs = (d = nhsDigits()) => pick([d, group(d, [3, 3, 4], ' '), group(d, [3, 3, 4], '-')]);
const steuer = (d = steuerDigits()) => pick([d, group(d, [2, 3, 3, 3], ' ')]);
const rrn = (d = rrnDigits()) => pick([d, `${d.slice(0, 2)}.${d.slice(2, 4)}.${d.slice(4, 6)}-${d.slice(6, 9)}.${d.slice(9)}`]);
const nir = (s = nirString()) => pick([s, group(s, [1, 2, 2, 2, 3, 3, 2], ' ')]);

function iban(country = pick(['NL', 'DE', 'GB', 'BE'])): string {
  for (;;) {
    const bban =
      country === 'NL'
        ? pick(['ABNA', 'INGB', 'RABO', 'TRIO']) + digits(10)
        : country === 'DE'
          ? digits(18)
          : country === 'GB'
            ? pick(['NWBK', 'BARC', 'MIDL']) + digits(14)
            : (() => {
                const first = digits(10);
                const c = Number(BigInt(first) % 97n) || 97;
                return first + pad(c);
              })();
    const composed = composeIBAN({ countryCode: country, bban });
    if (composed && isValidIBAN(composed)) return rand() < 0.5 ? composed : composed.replace(/(.{4})/g, '$1 ').trim();
  }
}
function badIban(): string {
  const good = iban().replace(/ /g, '');
  const check = Number(good.slice(2, 4));
  return good.slice(0, 2) + pad((check + int(1, 50)) % 98 || 2) + good.slice(4);
}

function phone(lang: string): string {
  for (;;) {
    const candidates: Record<string, (() => string)[]> = {
      nl: [() => `06-${digits(8)}`, () => `06 ${digits(8)}`, () => `+31 6 ${digits(8)}`, () => `020 ${digits(3)} ${digits(4)}`, () => `010-${digits(7)}`],
      de: [() => `0151 ${digits(8)}`, () => `0176 ${digits(8)}`, () => `+49 30 ${digits(8)}`, () => `089 ${digits(7)}`, () => `+49 171 ${digits(7)}`],
      en: [() => `07911 ${digits(6)}`, () => `07${int(4, 9)}${digits(2)} ${digits(6)}`, () => `+44 20 7946 ${digits(4)}`, () => `0161 496 ${digits(4)}`],
      fr: [() => `06 ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`, () => `+33 6 ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`, () => `01 ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`, () => `+32 470 ${digits(2)} ${digits(2)} ${digits(2)}`],
    };
    const n = pick(candidates[lang]!)();
    const country = { nl: 'NL', de: 'DE', en: 'GB', fr: 'FR' }[lang] as 'NL';
    if (parsePhoneNumberFromString(n, country)?.isValid()) return n;
  }
}
const FIRST = ['anna', 'jan', 'lena', 'tom', 'sophie', 'jonas', 'marie', 'pieter', 'claire', 'oliver', 'fatima', 'lucas'];
const LAST = ['jansen', 'devries', 'mueller', 'schmidt', 'smith', 'dupont', 'martin', 'bakker', 'weber', 'brown'];
const DOMAINS = ['gmail.com', 'hotmail.nl', 'web.de', 'outlook.com', 'orange.fr', 'ziggo.nl', 'gmx.de', 'btinternet.com', 'free.fr', 'icloud.com'];
const email = () => `${pick(FIRST)}${pick(['.', '_', ''])}${pick(LAST)}${pick(['', String(int(1, 99))])}@${pick(DOMAINS)}`;

const MONTH_WORDS: Record<string, string[]> = {
  nl: ['januari', 'februari', 'maart', 'april', 'mei', 'juni', 'juli', 'augustus', 'september', 'oktober', 'november', 'december'],
  de: ['Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August', 'September', 'Oktober', 'November', 'Dezember'],
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
  fr: ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre', 'décembre'],
};
function date(lang: string, year: number): string {
  const d = int(1, 28);
  const m = int(1, 12);
  const words = MONTH_WORDS[lang]!;
  return pick([
    `${pad(d)}-${pad(m)}-${year}`,
    `${pad(d)}.${pad(m)}.${year}`,
    `${d}/${m}/${year}`,
    lang === 'de' ? `${d}. ${words[m - 1]} ${year}` : lang === 'en' ? `${words[m - 1]} ${d}, ${year}` : `${d} ${words[m - 1]} ${year}`,
  ]);
}
const dob = (lang: string) => date(lang, int(1935, 2005));
const appointment = (lang: string) => date(lang, int(2025, 2026));

/** Placeholders: `{kind}` is an identifier (labelled); `{~name}` a near-miss (not labelled). */
const VALUES: Record<string, (lang: string) => string> = {
  email: () => email(),
  phone: (l) => phone(l),
  iban: () => iban(),
  date_of_birth: (l) => dob(l),
  bsn: () => bsn(),
  nhs: () => nhs(),
  steuer_id: () => steuer(),
  nir: () => nir(),
  rrn: () => rrn(),
  '~bsn': () => bsn(offByOne(bsnDigits())),
  '~nhs': () => nhs(offByOne(nhsDigits())),
  '~steuer': () => steuer(offByOne(steuerDigits())),
  '~rrn': () => rrn(offByOne(rrnDigits())),
  '~nir': () => offByOne(nirString()),
  '~iban': () => badIban(),
  '~order': () => pick([digits(9), `${int(2024, 2026)}${pad(int(1, 12))}${pad(int(1, 28))}-${digits(4)}`, `A-${digits(8)}`, digits(10), digits(11)]),
  '~appt': (l) => appointment(l),
  '~time': () => `${int(8, 17)}:${pick(['00', '15', '30', '45'])}`,
  '~amount': () => `${int(10, 2400)},${pick(['00', '50', '95'])}`,
  '~postcode': () => `${int(1000, 9999)} ${pick(['AB', 'CD', 'KL', 'XZ'])}`,
  '~short': () => `06 ${digits(4)}`,
  '~room': () => String(int(1, 40)),
};

const TEMPLATES: Record<string, string[]> = {
  nl: [
    'Goedemorgen, mijn BSN is {bsn}, kunt u mijn dossier opzoeken?',
    'Mijn burgerservicenummer: {bsn}. Ik ben geboren op {date_of_birth}.',
    'Kunt u mij terugbellen op {phone}? Dank u wel.',
    'Mijn nieuwe e-mailadres is {email}',
    'De factuur mag naar {email}, bedrag € {~amount}.',
    'Ik heb de rekening betaald vanaf {iban}.',
    'Graag terugstorten op rekening {iban} t.n.v. mijn moeder.',
    'Mijn afspraak op {~appt} om {~time} kan helaas niet doorgaan.',
    'Bestelnummer {~order} is nog niet geleverd, klopt dat?',
    'Kenmerk {~order}, ik wacht nog op de uitslag.',
    'Ik woon inmiddels op postcode {~postcode}, huisnummer {~room}.',
    'Is mijn BSN {~bsn} goed doorgekomen? Ik twijfel aan het laatste cijfer.',
    'Geboortedatum {date_of_birth}, mijn zoon heeft koorts sinds gisteren.',
    'U kunt mij bereiken op {phone} of via {email}.',
    'Mijn IBAN is {~iban} volgens mij, maar de bank zegt dat het niet klopt.',
    'Tot {~appt}! Ik neem de verwijsbrief mee.',
    'Nummer {~short} werkt niet meer, ik stuur de nieuwe straks.',
    'Mijn man (geboren {date_of_birth}) wil ook een afspraak, zijn BSN is {bsn}.',
    'Kamer {~room} om {~time}, klopt dat?',
    'Hartelijk dank voor de snelle hulp, tot volgende week.',
    'Ik bel vanaf {phone}, het nummer van mijn werk.',
    'Mijn zorgpas zegt BSN {bsn}, en mijn oude rekeningnummer was {~iban}.',
    'De apotheek vraagt om mijn BSN: {bsn}.',
    'Kunnen jullie het recept mailen naar {email}? Geboren {date_of_birth}.',
    'Ik heb op {~appt} een nieuwe afspraak nodig, liefst na {~time}.',
  ],
  de: [
    'Guten Tag, meine Steuer-ID ist {steuer_id}, brauchen Sie die für die Rechnung?',
    'Meine Steuer-Identifikationsnummer lautet {steuer_id}.',
    'Bitte rufen Sie mich unter {phone} zurück.',
    'Meine E-Mail-Adresse: {email}',
    'Die Rechnung bitte an {email} schicken, Betrag {~amount} Euro.',
    'Ich habe von meinem Konto {iban} überwiesen.',
    'Bitte erstatten Sie den Betrag auf {iban}.',
    'Mein Termin am {~appt} um {~time} Uhr muss leider ausfallen.',
    'Bestellnummer {~order} ist noch nicht angekommen.',
    'Rechnung Nr. {~order}, bitte um Prüfung.',
    'Geburtsdatum: {date_of_birth}, ich bin neu in der Praxis.',
    'Ich bin am {date_of_birth} geboren und brauche ein Rezept.',
    'Ist die Steuer-ID {~steuer} richtig? Ich bin mir bei der letzten Ziffer unsicher.',
    'Erreichbar bin ich unter {phone} oder {email}.',
    'Meine IBAN {~iban} wurde von der Bank abgelehnt, kann das sein?',
    'Bis zum {~appt}, ich bringe die Überweisung mit.',
    'Zimmer {~room} um {~time}, richtig?',
    'Vielen Dank für die schnelle Antwort!',
    'Meine Frau (geb. {date_of_birth}) möchte auch einen Termin, Tel. {phone}.',
    'Aktenzeichen {~order}, ich warte noch auf den Befund.',
    'Die Nummer {~short} ist alt, neue folgt.',
    'Für die Abrechnung: IBAN {iban}, Steuer-ID {steuer_id}.',
    'Ich habe am {~appt} Zeit, ab {~time}.',
    'Sendung {~order} kam heute an, danke.',
    'Meine Handynummer hat sich geändert: {phone}',
  ],
  en: [
    'Hi, my NHS number is {nhs}, can you check my referral?',
    'NHS no. {nhs}, date of birth {date_of_birth}.',
    'Please call me back on {phone}.',
    'My email is {email}, thanks.',
    'Send the invoice to {email} please, it was {~amount} pounds.',
    'I paid from account {iban} yesterday.',
    'Could you refund to {iban}?',
    'I cannot make my appointment on {~appt} at {~time}, sorry.',
    'Order number {~order} has not arrived yet.',
    'Invoice {~order} looks wrong to me.',
    'Date of birth: {date_of_birth}. I am registering as a new patient.',
    'I was born on {date_of_birth} and need a repeat prescription.',
    'Is NHS number {~nhs} right? The last digit might be off.',
    'You can reach me on {phone} or at {email}.',
    'My bank says {~iban} is not a valid IBAN, odd.',
    'See you on {~appt}!',
    'Room {~room} at {~time}, is that right?',
    'Thank you so much for your help today.',
    'My husband (DOB {date_of_birth}) also needs an appointment, his NHS number is {nhs}.',
    'Reference {~order}, still waiting for the results.',
    'The number {~short} is old, I will send the new one.',
    'My mobile changed: {phone}',
    'I am free on {~appt} after {~time}.',
    'Tracking {~order} says delivered.',
    'My son was born {date_of_birth}, NHS {nhs}, he has a rash.',
  ],
  fr: [
    'Bonjour, mon numéro de sécurité sociale est {nir}.',
    'Numéro de sécu : {nir}, née le {date_of_birth}.',
    'Pouvez-vous me rappeler au {phone} ?',
    'Mon adresse e-mail : {email}',
    'Envoyez la facture à {email}, montant {~amount} euros.',
    'J’ai payé depuis le compte {iban}.',
    'Merci de rembourser sur {iban}.',
    'Mon rendez-vous du {~appt} à {~time} est annulé, désolée.',
    'Commande {~order} pas encore reçue.',
    'Facture n° {~order}, pouvez-vous vérifier ?',
    'Date de naissance : {date_of_birth}, je suis nouveau patient.',
    'Je suis né le {date_of_birth}, il me faut une ordonnance.',
    'Mon numéro national belge : {rrn}.',
    'Rijksregisternummer {rrn}, voor de terugbetaling.',
    'Le numéro {~nir} est-il correct ? Je doute de la clé.',
    'Numéro national {~rrn}, je crois qu’il y a une erreur.',
    'Joignable au {phone} ou par {email}.',
    'La banque refuse {~iban}, bizarre.',
    'À bientôt le {~appt} !',
    'Salle {~room} à {~time}, c’est bien ça ?',
    'Merci beaucoup pour votre aide.',
    'Ma fille (née le {date_of_birth}) a besoin d’un rendez-vous, tél. {phone}.',
    'Référence {~order}, j’attends toujours les résultats.',
    'Le numéro {~short} n’est plus valable.',
    'Mon nouveau portable : {phone}',
  ],
};

export interface LabelledSentence {
  lang: string;
  text: string;
  spans: { kind: FindingKind; start: number; end: number }[];
}

function render(lang: string, template: string): LabelledSentence {
  let text = '';
  const spans: LabelledSentence['spans'] = [];
  for (const part of template.split(/(\{~?[a-z_]+\})/)) {
    const m = /^\{(~?[a-z_]+)\}$/.exec(part);
    if (!m) {
      text += part;
      continue;
    }
    const value = VALUES[m[1]!]!(lang);
    if (!m[1]!.startsWith('~')) spans.push({ kind: m[1] as FindingKind, start: text.length, end: text.length + value.length });
    text += value;
  }
  return { lang, text, spans };
}

const rows: LabelledSentence[] = [];
for (const [lang, templates] of Object.entries(TEMPLATES)) {
  for (let round = 0; round < 6; round++) for (const t of templates) rows.push(render(lang, t));
}
writeFileSync(join(import.meta.dirname, 'labelled.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
console.log(`${rows.length} sentences`);
