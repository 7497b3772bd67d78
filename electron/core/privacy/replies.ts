import type { KeywordLanguage } from '../../../shared/rpc';

/**
 * The one automatic answer to a privacy keyword, in the patient's language: the language the word
 * belongs to, or (STOP is a word in every list) the one their phone number's country speaks.
 */

const COUNTRY_LANGUAGE: readonly [string, KeywordLanguage][] = [
  ['31', 'nl'],
  ['32', 'nl'],
  ['49', 'de'],
  ['43', 'de'],
  ['41', 'de'],
  ['33', 'fr'],
  ['352', 'fr'],
  ['34', 'es'],
  ['44', 'en'],
  ['1', 'en'],
];

export function replyLanguage(candidates: readonly KeywordLanguage[], waId: string | null): KeywordLanguage {
  if (candidates.length === 1) return candidates[0]!;
  const byCountry = waId ? COUNTRY_LANGUAGE.find(([prefix]) => waId.startsWith(prefix))?.[1] : undefined;
  if (byCountry && (candidates.length === 0 || candidates.includes(byCountry))) return byCountry;
  return candidates.includes('en') || candidates.length === 0 ? 'en' : candidates[0]!;
}

function formatDate(at: number, lang: KeywordLanguage): string {
  const d = new Date(at);
  const dd = String(d.getUTCDate()).padStart(2, '0');
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const yyyy = d.getUTCFullYear();
  return lang === 'de' ? `${dd}.${mm}.${yyyy}` : lang === 'nl' ? `${dd}-${mm}-${yyyy}` : lang === 'en' ? `${yyyy}-${mm}-${dd}` : `${dd}/${mm}/${yyyy}`;
}

const OPTED_OUT: Record<KeywordLanguage, string> = {
  nl: 'U bent afgemeld: de praktijk stuurt u geen berichten meer via WhatsApp. Wilt u toch weer berichten ontvangen? Stuur START.',
  de: 'Sie sind abgemeldet: Die Praxis schickt Ihnen keine Nachrichten mehr über WhatsApp. Möchten Sie wieder Nachrichten erhalten? Senden Sie START.',
  en: 'You are unsubscribed: the clinic will not send you messages on WhatsApp any more. To hear from us again, send START.',
  fr: 'Vous êtes désinscrit : le cabinet ne vous enverra plus de messages sur WhatsApp. Pour en recevoir à nouveau, envoyez START.',
  es: 'Se ha dado de baja: la consulta ya no le enviará mensajes por WhatsApp. Para volver a recibirlos, envíe START.',
};

const OPTED_IN: Record<KeywordLanguage, string> = {
  nl: 'U bent weer aangemeld: de praktijk mag u weer berichten sturen via WhatsApp. Afmelden kan altijd met STOP.',
  de: 'Sie sind wieder angemeldet: Die Praxis darf Ihnen wieder Nachrichten über WhatsApp schicken. Abmelden jederzeit mit STOP.',
  en: 'You are subscribed again: the clinic may send you messages on WhatsApp. Send STOP at any time to unsubscribe.',
  fr: 'Vous êtes à nouveau inscrit : le cabinet peut vous envoyer des messages sur WhatsApp. Envoyez STOP à tout moment pour vous désinscrire.',
  es: 'Se ha dado de alta de nuevo: la consulta puede enviarle mensajes por WhatsApp. Envíe STOP en cualquier momento para darse de baja.',
};

const ACCESS: Record<KeywordLanguage, (deadline: string) => string> = {
  nl: (d) => `We hebben uw verzoek om inzage in uw gegevens ontvangen. U krijgt uiterlijk ${d} antwoord. Voor uw veiligheid controleren we eerst aan de balie wie u bent.`,
  de: (d) => `Wir haben Ihre Anfrage auf Auskunft über Ihre Daten erhalten. Sie erhalten spätestens am ${d} eine Antwort. Zu Ihrer Sicherheit prüfen wir vorher am Empfang Ihre Identität.`,
  en: (d) => `We have received your request for a copy of your data. You will have our answer by ${d} at the latest. For your safety we first check your identity at the desk.`,
  fr: (d) => `Nous avons bien reçu votre demande d’accès à vos données. Vous aurez notre réponse au plus tard le ${d}. Pour votre sécurité, nous vérifions d’abord votre identité à l’accueil.`,
  es: (d) => `Hemos recibido su solicitud de acceso a sus datos. Recibirá nuestra respuesta a más tardar el ${d}. Por su seguridad, primero comprobamos su identidad en recepción.`,
};

export function optedOutReply(lang: KeywordLanguage): string {
  return OPTED_OUT[lang];
}
export function optedInReply(lang: KeywordLanguage): string {
  return OPTED_IN[lang];
}
export function accessReply(lang: KeywordLanguage, dueAt: number): string {
  return ACCESS[lang](formatDate(dueAt, lang));
}
