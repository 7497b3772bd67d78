import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Meta-shaped webhook bodies for tests, after the WhatsApp Cloud API webhook reference (fake
 * numbers and ids). `sampleMessages` has one inbound message of every type ingest knows, plus the
 * shapes it must keep without knowing them.
 */
export const PHONE_NUMBER_ID = '110000000000001';
export const WABA_ID = '100000000000001';
export const PATIENT_WA_ID = '15555550101';
export const PATIENT_BSUID = 'DE.1502576394655843';

/** The project's reference payloads, copied from `../shared/vectors` into `tests/vectors`. */
export const VECTORS_DIR = join(import.meta.dirname, '..', '..', '..', 'tests', 'vectors', 'whatsapp');

/** The reference payloads by file name. */
export function vectorPayloads(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of readdirSync(VECTORS_DIR)) {
    if (f.endsWith('.json') && f !== 'signature.json') out[f] = JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8'));
  }
  return out;
}

let seq = 0;
export const wamid = (tag = 'x') => `wamid.TEST${tag}${++seq}`;

/** Wraps `value` fields into a full body with one entry and one `messages` change. */
export function webhookBody(value: Record<string, unknown>, phoneNumberId = PHONE_NUMBER_ID): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: WABA_ID,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001234', phone_number_id: phoneNumberId },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

export function contact(name = 'Zoë Müller', waId: string | undefined = PATIENT_WA_ID, userId?: string) {
  return { profile: { name }, ...(waId ? { wa_id: waId } : {}), ...(userId ? { user_id: userId } : {}) };
}

/** One inbound message body per type, each with a distinct wamid. */
export function sampleMessages(ts = 1760000000): Record<string, Record<string, unknown>> {
  const base = (type: string, extra: Record<string, unknown>) => ({
    from: PATIENT_WA_ID,
    id: wamid(type),
    timestamp: String(ts),
    type,
    ...extra,
  });
  const media = (id: string, mime: string) => ({ id, mime_type: mime, sha256: 'c2hhMjU2LWJhc2U2NA==' });
  return {
    text: base('text', { text: { body: 'Kann ich den Termin verschieben?' } }),
    image: base('image', { image: { ...media('3000000000000001', 'image/jpeg'), caption: 'Rezept Ärztin' } }),
    audio: base('audio', { audio: { ...media('3000000000000002', 'audio/ogg; codecs=opus'), voice: true } }),
    video: base('video', { video: { ...media('3000000000000003', 'video/mp4'), caption: 'Knie' } }),
    document: base('document', { document: { ...media('3000000000000004', 'application/pdf'), filename: 'befund.pdf', caption: 'Befund' } }),
    sticker: base('sticker', { sticker: { ...media('3000000000000005', 'image/webp'), animated: false } }),
    location: base('location', { location: { latitude: 52.52, longitude: 13.405, name: 'Praxis', address: 'Hauptstr. 1' } }),
    contacts: base('contacts', {
      contacts: [{ name: { formatted_name: 'Anna Beispiel', first_name: 'Anna' }, phones: [{ phone: '+49 30 1234', wa_id: '49301234', type: 'CELL' }] }],
    }),
    button_reply: base('interactive', { interactive: { type: 'button_reply', button_reply: { id: 'confirm', title: 'Bestätigen' } } }),
    list_reply: base('interactive', {
      interactive: { type: 'list_reply', list_reply: { id: 'slot-2', title: 'Dienstag 10:00', description: 'Dr. Weber' } },
    }),
    nfm_reply: base('interactive', {
      interactive: { type: 'nfm_reply', nfm_reply: { name: 'flow', body: 'Sent', response_json: '{"flow_token":"t","answer":"ja"}' } },
    }),
    template_button: base('button', { button: { payload: 'CONFIRM_APPT', text: 'Ja, ich komme' } }),
    system: {
      from: PATIENT_WA_ID,
      id: wamid('system'),
      timestamp: String(ts),
      type: 'system',
      system: { body: 'User changed from 15555550101 to 15555550199', wa_id: '15555550199', type: 'user_changed_number' },
    },
    order: base('order', { order: { catalog_id: 'c1', text: 'Bitte', product_items: [{ product_retailer_id: 'p1', quantity: 1 }] } }),
    meta_unsupported: base('unsupported', {
      errors: [{ code: 131051, title: 'Message type unknown', message: 'Message type unknown', error_data: { details: 'Message type is currently not supported.' } }],
      unsupported: { type: 'poll' },
    }),
    future_type: base('hologram', { hologram: { frames: 3 } }),
    with_context: base('text', {
      text: { body: 'Antwort auf Ihre Nachricht' },
      context: { from: '15550001234', id: 'wamid.REPLIEDTO', forwarded: false },
    }),
    forwarded: base('text', { text: { body: 'Weitergeleitet' }, context: { forwarded: true, frequently_forwarded: true } }),
    referred_product: base('text', {
      text: { body: 'Ist das lieferbar?' },
      context: { from: '15550001234', id: 'wamid.PRODUCTMSG', referred_product: { catalog_id: 'c1', product_retailer_id: 'p1' } },
    }),
    referral: base('text', {
      text: { body: 'Ich habe Ihre Anzeige gesehen' },
      referral: { source_url: 'https://fb.me/x', source_id: 'ad1', source_type: 'ad', headline: 'Impfung', body: 'Jetzt buchen', media_type: 'image', image_url: 'https://x', ctwa_clid: 'clid' },
    }),
    with_errors: base('text', { text: { body: 'mit Fehler' }, errors: [{ code: 131000, title: 'Something went wrong' }] }),
  };
}

export function reaction(targetWamid: string, emoji: string | undefined, ts: number, from = PATIENT_WA_ID): Record<string, unknown> {
  return { from, id: wamid('reaction'), timestamp: String(ts), type: 'reaction', reaction: { message_id: targetWamid, ...(emoji === undefined ? {} : { emoji }) } };
}

export function status(id: string, value: string, ts: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, status: value, timestamp: String(ts), recipient_id: PATIENT_WA_ID, ...extra };
}
