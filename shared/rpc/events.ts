import { z } from 'zod';
import { urlParts, isLoopbackHttp } from '../urls';
import { Id, method } from './common';

/**
 * Signed events for the clinic's other systems (a practice-management system, a dashboard).
 * Admins subscribe an HTTPS endpoint to the events it needs; each delivery is a JSON body
 * (schema `clinic-inbox.event/1`, documented in electron/core/events/README.md) signed with
 * HMAC-SHA256 over the raw bytes under a per-subscription secret shown once.
 */

export const EVENT_TYPES = [
  'message.received',
  'message.status',
  'conversation.assigned',
  'conversation.resolved',
  'booking.created',
  'booking.moved',
  'booking.cancelled',
  'contact.opted_out',
  'contact.erased',
] as const;
export const EventTypeSchema = z.enum(EVENT_TYPES);
export type EventType = z.infer<typeof EventTypeSchema>;

/** The header carrying `sha256=<hex>` (the scheme of Meta's `X-Hub-Signature-256`). */
export const EVENT_SIGNATURE_HEADER = 'X-Clinic-Inbox-Signature-256';
export const EVENT_SCHEMA = 'clinic-inbox.event/1';

/** 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 and IPv6 unique-local fc00::/7: a clinic's own LAN. */
export function isPrivateLanHost(hostname: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(hostname);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    if ([v4[1], v4[2], v4[3], v4[4]].some((p) => Number(p) > 255)) return false;
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  return /^\[f[cd][0-9a-f]{2}:/i.test(hostname);
}

/**
 * Where events may go: HTTPS to a named host; plain http only to this computer or a private LAN
 * address, and then only when the admin confirmed it (`plainHttpConfirmed`).
 */
export function subscriptionUrlProblem(url: string, plainHttpConfirmed: boolean): string | null {
  if (url.length > 2000) return 'The address is too long.';
  const { protocol, hostname } = urlParts(url);
  if (hostname === '' || url.includes('@') || /\s/.test(url)) return 'Enter a full address such as https://pms.example.org/hooks/clinic-inbox.';
  if (protocol === 'https:') return null;
  if (protocol !== 'http:') return 'Only https:// addresses are accepted.';
  if (!isLoopbackHttp(url) && !isPrivateLanHost(hostname)) return 'Plain http:// is accepted only for this computer or an address on the clinic’s own network; use https://.';
  if (!plainHttpConfirmed) return 'Events would cross the network unencrypted: confirm plain http for this address on the clinic’s own network.';
  return null;
}

export const SubscriptionSchema = z.object({
  id: Id,
  url: z.string(),
  events: z.array(EventTypeSchema),
  includeText: z.boolean(),
  enabled: z.boolean(),
  plainHttp: z.boolean(),
  createdAt: z.number().int(),
  pending: z.number().int().nonnegative(),
  delivered: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
});
export type Subscription = z.infer<typeof SubscriptionSchema>;

/** One event's delivery to one subscriber: what happened, never what was sent. */
export const DeliverySchema = z.object({
  id: Id,
  eventId: z.string(),
  type: z.union([EventTypeSchema, z.literal('test')]),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().nonnegative(),
  lastStatusCode: z.number().int().nullable(),
  /** Of the last attempt, in milliseconds. */
  latencyMs: z.number().int().nullable(),
  /** `timeout`, `connection refused`, `HTTP 503`… for the admin; never the body. */
  lastError: z.string().nullable(),
  createdAt: z.number().int(),
  deliveredAt: z.number().int().nullable(),
  nextAttemptAt: z.number().int().nullable(),
});
export type Delivery = z.infer<typeof DeliverySchema>;

const SubscriptionInputSchema = z.object({
  url: z.string().trim().min(1).max(2000),
  events: z.array(EventTypeSchema).min(1).max(EVENT_TYPES.length),
  /** Message text in `message.received` events; off unless the admin accepts the warning. */
  includeText: z.boolean().default(false),
  plainHttpConfirmed: z.boolean().default(false),
});

export const eventsMethods = {
  'events.list': method({ input: z.object({}), output: z.array(SubscriptionSchema), roles: ['admin'] }),
  /** The secret is in this answer only: it cannot be read back later. */
  'events.create': method({
    input: SubscriptionInputSchema,
    output: z.object({ subscription: SubscriptionSchema, secret: z.string() }),
    roles: ['admin'],
    audit: 'configure',
  }),
  'events.update': method({
    input: z.object({ id: Id, events: z.array(EventTypeSchema).min(1).optional(), includeText: z.boolean().optional(), enabled: z.boolean().optional() }),
    output: SubscriptionSchema,
    roles: ['admin'],
    audit: 'configure',
  }),
  'events.delete': method({ input: z.object({ id: Id }), output: z.object({ deleted: z.literal(true) }), roles: ['admin'], audit: 'configure' }),
  'events.deliveries': method({
    input: z.object({ subscriptionId: Id, limit: z.number().int().min(1).max(200).default(50) }),
    output: z.array(DeliverySchema),
    roles: ['admin'],
  }),
  /** Queues a `test` event (no patient data) to this subscriber. */
  'events.sendTest': method({ input: z.object({ id: Id }), output: z.object({ eventId: z.string() }), roles: ['admin'], audit: 'configure' }),
} as const;
