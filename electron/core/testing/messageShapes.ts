import { PATIENT_WA_ID, PHONE_NUMBER_ID, WABA_ID, contact, webhookBody } from './whatsappPayloads';

/**
 * Every message shape of issue 9 as a whole webhook body in Meta's documented form (the Cloud API
 * webhook reference: messages by type, edit, revoke, smb_message_echoes, calls, errors), with fake
 * numbers and ids. Each has its own wamids, so they can be posted together or one by one.
 */
export interface Shape {
  name: string;
  /** Webhook bodies, in the order they are posted. */
  bodies: Record<string, unknown>[];
}

const SECOND_PATIENT = '15555550102';

function msg(tag: string, ts: number, type: string, extra: Record<string, unknown>, from: string | null = PATIENT_WA_ID): Record<string, unknown> {
  return { ...(from ? { from } : {}), id: `wamid.SHAPE-${tag}`, timestamp: String(ts), type, ...extra };
}
const inbound = (...messages: Record<string, unknown>[]) => webhookBody({ contacts: [contact()], messages });
const media = (id: string, mime: string) => ({ id, mime_type: mime, sha256: 'c2hhMjU2LWJhc2U2NA==' });

function change(field: string, value: Record<string, unknown>): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: WABA_ID, changes: [{ field, value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550001234', phone_number_id: PHONE_NUMBER_ID }, ...value } }] }],
  };
}

export function messageShapes(ts = 1_760_100_000): Shape[] {
  let t = ts;
  const at = () => (t += 60);
  return [
    { name: 'location-bare', bodies: [inbound(msg('loc-bare', at(), 'location', { location: { latitude: 52.370216, longitude: 4.895168 } }))] },
    {
      name: 'location-named',
      bodies: [inbound(msg('loc-named', at(), 'location', { location: { latitude: 48.137154, longitude: 11.576124, name: 'Praxis am Markt', address: 'Marienplatz 1, München' } }))],
    },
    {
      name: 'button-reply',
      bodies: [inbound(msg('btn', at(), 'interactive', { context: { from: '15550001234', id: 'wamid.ASKED-1' }, interactive: { type: 'button_reply', button_reply: { id: 'confirm', title: 'Bestätigen' } } }))],
    },
    {
      name: 'list-reply',
      bodies: [inbound(msg('list', at(), 'interactive', { interactive: { type: 'list_reply', list_reply: { id: 'slot-2', title: 'Dienstag 10:00', description: 'Dr. Weber' } } }))],
    },
    {
      name: 'form-reply',
      bodies: [
        inbound(
          msg('nfm', at(), 'interactive', {
            context: { from: '15550001234', id: 'wamid.FLOW-1' },
            interactive: {
              type: 'nfm_reply',
              nfm_reply: {
                name: 'flow',
                body: 'Sent',
                response_json: JSON.stringify({ flow_token: 'tok-1', screen_0_Preferred_date_0: '2026-03-02', screen_0_Reason_1: '1_Check-up', insured: true }),
              },
            },
          }),
        ),
      ],
    },
    {
      name: 'call-permission',
      bodies: [
        inbound(
          msg('callperm', at(), 'interactive', {
            interactive: { type: 'call_permission_reply', call_permission_reply: { response: 'accept', is_permanent: false, expiration_timestamp: ts + 7 * 86400, response_source: 'user_action' } },
          }),
        ),
      ],
    },
    { name: 'template-button', bodies: [inbound(msg('tplbtn', at(), 'button', { context: { from: '15550001234', id: 'wamid.TPL-1' }, button: { payload: 'CONFIRM_APPT', text: 'Ja, ich komme' } }))] },
    {
      name: 'order',
      bodies: [
        inbound(
          msg('order', at(), 'order', {
            order: {
              catalog_id: 'catalog-4711',
              text: 'Bitte zur Abholung',
              product_items: [
                { product_retailer_id: 'vit-d3', quantity: 2, item_price: 12.5, currency: 'EUR' },
                { product_retailer_id: 'spray-10', quantity: 1, item_price: 4.99, currency: 'EUR' },
              ],
            },
          }),
        ),
      ],
    },
    {
      name: 'referral',
      bodies: [
        inbound(
          msg('ad', at(), 'text', {
            text: { body: 'Ich möchte einen Impftermin' },
            referral: { source_url: 'https://fb.me/abc', source_id: 'ad-77', source_type: 'ad', headline: 'Grippeimpfung jetzt', body: 'Termine ab Montag', media_type: 'image', image_url: 'https://example.invalid/x.jpg', ctwa_clid: 'clid-1' },
          }),
        ),
      ],
    },
    {
      name: 'contacts-card',
      bodies: [
        inbound(
          msg('vcard', at(), 'contacts', {
            contacts: [{ name: { formatted_name: 'Anna Beispiel', first_name: 'Anna', last_name: 'Beispiel' }, phones: [{ phone: '+49 30 1234567', wa_id: '49301234567', type: 'CELL' }], emails: [{ email: 'anna@example.invalid', type: 'WORK' }], org: { company: 'Apotheke Nord' } }],
          }),
        ),
      ],
    },
    { name: 'sticker-animated', bodies: [inbound(msg('stk-anim', at(), 'sticker', { sticker: { ...media('3100000000000001', 'image/webp'), animated: true } }))] },
    { name: 'sticker-static', bodies: [inbound(msg('stk', at(), 'sticker', { sticker: { ...media('3100000000000002', 'image/webp'), animated: false } }))] },
    { name: 'voice', bodies: [inbound(msg('voice', at(), 'audio', { audio: { ...media('3100000000000003', 'audio/ogg; codecs=opus'), voice: true } }))] },
    { name: 'audio-file', bodies: [inbound(msg('audio', at(), 'audio', { audio: { ...media('3100000000000004', 'audio/mpeg'), voice: false } }))] },
    { name: 'video', bodies: [inbound(msg('video', at(), 'video', { video: { ...media('3100000000000005', 'video/mp4'), caption: 'So sieht das Knie aus' } }))] },
    { name: 'document', bodies: [inbound(msg('doc', at(), 'document', { document: { ...media('3100000000000006', 'application/pdf'), filename: 'Befund-2026.pdf', caption: 'Mein Befund' } }))] },
    {
      name: 'meta-unsupported',
      bodies: [
        inbound(
          msg('unsup', at(), 'unsupported', {
            errors: [{ code: 131051, title: 'Message type unknown', message: 'Message type unknown', error_data: { details: 'Message type is currently not supported.' } }],
            unsupported: { type: 'poll_creation' },
          }),
        ),
      ],
    },
    { name: 'unknown-type', bodies: [inbound(msg('future', at(), 'hologram', { hologram: { frames: 3 } }))] },
    {
      name: 'edit',
      bodies: [
        inbound(msg('edit-orig', at(), 'text', { text: { body: 'Termin am Dienstag bitte' } })),
        inbound(msg('edit-ev', at(), 'edit', { edit: { original_message_id: 'wamid.SHAPE-edit-orig', message: { type: 'text', text: { body: 'Termin am Mittwoch bitte' } } } })),
      ],
    },
    {
      name: 'revoke',
      bodies: [
        inbound(msg('rev-orig', at(), 'text', { text: { body: 'Meine Versichertennummer ist geheim123' } })),
        inbound(msg('rev-ev', at(), 'revoke', { revoke: { original_message_id: 'wamid.SHAPE-rev-orig' } })),
      ],
    },
    {
      name: 'echo',
      bodies: [
        change('smb_message_echoes', {
          message_echoes: [{ from: '15550001234', to: PATIENT_WA_ID, id: 'wamid.SHAPE-echo', timestamp: String(at()), type: 'text', text: { body: 'Gern, bis Mittwoch!' } }],
        }),
      ],
    },
    {
      name: 'call-missed',
      bodies: [
        change('calls', { contacts: [contact()], calls: [{ id: 'wacid.SHAPE-missed', from: PATIENT_WA_ID, to: '15550001234', event: 'connect', timestamp: String(at()), direction: 'USER_INITIATED', session: { sdp_type: 'offer', sdp: 'v=0' } }] }),
        change('calls', { contacts: [contact()], calls: [{ id: 'wacid.SHAPE-missed', from: PATIENT_WA_ID, to: '15550001234', event: 'terminate', timestamp: String(at()), direction: 'USER_INITIATED', status: 'FAILED' }] }),
      ],
    },
    {
      name: 'call-answered',
      bodies: [
        change('calls', {
          contacts: [contact()],
          calls: [{ id: 'wacid.SHAPE-answered', from: PATIENT_WA_ID, to: '15550001234', event: 'terminate', timestamp: String(at()), direction: 'USER_INITIATED', status: 'COMPLETED', start_time: String(t - 200), end_time: String(t), duration: 185 }],
        }),
      ],
    },
  ];
}

/** A message nobody can be named for: no `from`, and two contacts in the change. */
export function unattributableBody(ts = 1_760_200_000): Record<string, unknown> {
  return webhookBody({ contacts: [contact(), contact('Zweite Person', SECOND_PATIENT)], messages: [msg('orphan', ts, 'text', { text: { body: 'Wer bin ich?' } }, null)] });
}

/** A field this version does not ingest. */
export function ignoredFieldBody(): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: WABA_ID, changes: [{ field: 'account_update', value: { phone_number: '15550001234', event: 'VERIFIED_ACCOUNT', metadata: { phone_number_id: PHONE_NUMBER_ID } } }] }],
  };
}

/** Value-level errors (Meta's errors reference: 130429 rate limit). */
export function valueErrorBody(): Record<string, unknown> {
  return webhookBody({ errors: [{ code: 130429, title: 'Rate limit hit', message: 'Rate limit hit', error_data: { details: 'Cloud API message throughput has been reached.' } }] });
}
