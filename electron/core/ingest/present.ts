import type { MessageDetail, ReferralView } from '../../../shared/rpc';
import { KnownMessageSchema, ReferralSchema } from '../../../shared/whatsapp/webhook';
import { parseFormAnswers } from './normalize';

/**
 * A stored message (its type and the JSON Meta sent) → what its bubble needs beyond the text: the
 * shape it is shown in and, for a message that came from an ad, where from. Pure; parsed by Meta's
 * documented schemas, so a shape that does not match shows as "cannot show yet", never empty.
 */
export function presentMessage(type: string, content: unknown): { detail: MessageDetail | null; referral: ReferralView | null } {
  const raw = (content ?? {}) as Record<string, unknown>;
  const ref = ReferralSchema.safeParse(raw['referral']);
  const referral =
    ref.success && raw['referral'] !== undefined
      ? { sourceType: ref.data.source_type ?? null, headline: ref.data.headline ?? null, body: ref.data.body ?? null, sourceUrl: ref.data.source_url ?? null }
      : null;
  return { detail: detailOf(type, raw), referral };
}

const num = (v: unknown): number | null => {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
};

/** OpenStreetMap at the pin: a fixed https host the desk's external-link allowlist names. */
export function mapsUrl(latitude: number, longitude: number): string {
  const lat = latitude.toFixed(6);
  const lon = longitude.toFixed(6);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
}

function detailOf(type: string, raw: Record<string, unknown>): MessageDetail | null {
  if (type === 'call') return callDetail(raw['call']);
  if (type === 'unsupported') return { kind: 'unsupported', metaType: unsupportedType(raw) };
  if (type === 'text' || type === 'image' || type === 'system' || type === 'reaction') return null;
  const parsed = KnownMessageSchema.safeParse(raw);
  if (!parsed.success) return { kind: 'unsupported', metaType: type };
  const m = parsed.data;
  switch (m.type) {
    case 'location':
      return {
        kind: 'location',
        latitude: m.location.latitude,
        longitude: m.location.longitude,
        name: m.location.name ?? null,
        address: m.location.address ?? null,
        mapsUrl: mapsUrl(m.location.latitude, m.location.longitude),
      };
    case 'contacts':
      return {
        kind: 'contacts',
        cards: m.contacts.map((c) => ({
          name: c.name?.formatted_name ?? ([c.name?.first_name, c.name?.last_name].filter(Boolean).join(' ') || null),
          phones: (c.phones ?? []).map((p) => p.phone ?? p.wa_id ?? '').filter(Boolean),
          emails: (c.emails ?? []).map((e) => e.email ?? '').filter(Boolean),
          organisation: typeof c.org?.['company'] === 'string' ? c.org['company'] : null,
        })),
      };
    case 'interactive': {
      const i = m.interactive;
      if (i.button_reply) return { kind: 'reply', replyKind: 'button', title: i.button_reply.title, description: null };
      if (i.list_reply) return { kind: 'reply', replyKind: 'list', title: i.list_reply.title, description: i.list_reply.description ?? null };
      if (i.nfm_reply) return { kind: 'form', answers: parseFormAnswers(i.nfm_reply.response_json) };
      if (i.call_permission_reply)
        return { kind: 'callPermission', accepted: i.call_permission_reply.response === 'accept', permanent: i.call_permission_reply.is_permanent ?? null };
      return { kind: 'unsupported', metaType: `interactive ${i.type}` };
    }
    case 'button':
      return { kind: 'reply', replyKind: 'template', title: m.button.text, description: null };
    case 'order':
      return {
        kind: 'order',
        catalogId: m.order.catalog_id ?? null,
        items: (m.order.product_items ?? []).map((p) => ({
          retailerId: p.product_retailer_id ?? null,
          quantity: num(p.quantity),
          price: num(p.item_price),
          currency: p.currency ?? null,
        })),
      };
    case 'sticker':
      return { kind: 'sticker', animated: m.sticker.animated === true };
    case 'audio':
      return { kind: 'audio', voice: m.audio.voice === true };
    case 'video':
      return { kind: 'video' };
    case 'document':
      return { kind: 'document', filename: m.document.filename ?? null };
    default:
      return null;
  }
}

function unsupportedType(raw: Record<string, unknown>): string {
  const inner = raw['unsupported'] as { type?: unknown } | undefined;
  if (typeof inner?.type === 'string') return inner.type.slice(0, 40);
  return typeof raw['type'] === 'string' && raw['type'] !== 'unsupported' ? raw['type'].slice(0, 40) : 'unknown';
}

function callDetail(call: unknown): MessageDetail {
  const c = (call ?? {}) as { event?: string; status?: string | null; durationSeconds?: number | null; direction?: string | null };
  const direction = (c.direction ?? '').toUpperCase() === 'BUSINESS_INITIATED' ? 'out' : 'in';
  const status = (c.status ?? '').toUpperCase();
  const duration = typeof c.durationSeconds === 'number' ? c.durationSeconds : null;
  let outcome: Extract<MessageDetail, { kind: 'call' }>['outcome'] = 'ringing';
  if (c.event === 'terminate') outcome = status === 'COMPLETED' && (duration ?? 0) > 0 ? 'answered' : status === 'FAILED' ? (direction === 'in' ? 'missed' : 'failed') : 'missed';
  else if (status === 'REJECTED') outcome = 'rejected';
  else if (status === 'ACCEPTED') outcome = 'accepted';
  return { kind: 'call', direction, outcome, durationSeconds: duration };
}
