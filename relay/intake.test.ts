import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EnvelopePlaintextSchema } from '../shared/envelope';
import { RoutableWebhookSchema } from '../shared/whatsapp/routing';
import { canonicalJson, nestingDepthExceeds, parseWebhook, routeWebhook, signMetaBody, verifyMetaSignature } from './intake';
import { batchWebhook, metaJson, reactionChange, statusChange, textMessageChange } from './testing/signWebhook';

const sigVectors = JSON.parse(readFileSync(new URL('../tests/vectors/whatsapp/signature.json', import.meta.url), 'utf8')) as {
  vectors: { id: string; app_secret: string; raw_body_base64: string; expected_header: string }[];
};

describe('X-Hub-Signature-256', () => {
  it.each(sigVectors.vectors)('matches the reference vector $id byte for byte', (v) => {
    const raw = Buffer.from(v.raw_body_base64, 'base64');
    expect(signMetaBody(v.app_secret, raw)).toBe(v.expected_header);
    expect(verifyMetaSignature([v.app_secret], raw, v.expected_header)).toBe(true);
    expect(verifyMetaSignature(['another-secret-0123456789'], raw, v.expected_header)).toBe(false);
  });

  it('verifies a non-ASCII body over the escaped bytes Meta sends, not over a re-serialisation', () => {
    // Compact JSON as Meta sends it: non-ASCII as \\uXXXX (a surrogate pair for the emoji), "/" as "\\/".
    // The expected header was computed independently with Python's hmac over these exact bytes.
    const raw = Buffer.from(String.raw`{"object":"whatsapp_business_account","entry":[{"id":"100000000000001","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001234","phone_number_id":"110000000000001"},"contacts":[{"profile":{"name":"J\u00fcrgen M\u00fcller"},"wa_id":"15555550101"}],"messages":[{"from":"15555550101","id":"wamid.HBgLMTU1NTU1NTAxMDEVAgASGBRCMENGQjczREE5MkEyQkJDMkI4MgB=","timestamp":"1760000000","type":"text","text":{"body":"Gr\u00fc\u00dfe \u2013 Termin am 5\/6? \ud83d\ude0a"}}]},"field":"messages"}]}]}`);
    const secret = '0123456789abcdef0123456789abcdef';
    const header = 'sha256=bb627748f669903d42556695a3f593aa9cbbc31fc49a9c1b3b91fa3fb58512f7';
    expect(signMetaBody(secret, raw)).toBe(header);
    expect(verifyMetaSignature([secret], raw, header)).toBe(true);
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(raw.toString())));
    expect(reserialised.equals(raw)).toBe(false);
    expect(verifyMetaSignature([secret], reserialised, header)).toBe(false);
  });

  it('metaJson escapes the way Meta does, so test bodies exercise the same bytes', () => {
    const escaped = metaJson(batchWebhook([textMessageChange({ phoneNumberId: '1', wamid: 'w', text: 'Grüße – 5/6 ☃' })]));
    expect(escaped).toContain('Gr\\u00fc\\u00dfe \\u2013 5\\/6 \\u2603');
    expect(escaped).not.toMatch(/[^\x00-\x7f]/);
  });

  it('accepts any active secret during rotation and refuses malformed headers', () => {
    const raw = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
    const header = signMetaBody('new-secret-0123456789', raw);
    expect(verifyMetaSignature(['old-secret-0123456789', 'new-secret-0123456789'], raw, header)).toBe(true);
    expect(verifyMetaSignature(['old-secret-0123456789'], raw, header)).toBe(false);
    expect(verifyMetaSignature(['new-secret-0123456789'], raw, undefined)).toBe(false);
    expect(verifyMetaSignature(['new-secret-0123456789'], raw, header.replace('sha256=', 'sha1='))).toBe(false);
    expect(verifyMetaSignature(['new-secret-0123456789'], raw, header.slice(0, -2))).toBe(false);
    expect(verifyMetaSignature(['new-secret-0123456789'], Buffer.concat([raw, Buffer.from(' ')]), header)).toBe(false);
  });
});

describe('routing a batch', () => {
  const tenants: Record<string, string> = { '111': 'clinic-a', '112': 'clinic-a', '222': 'clinic-b' };
  const tenantOf = (p: string) => tenants[p];

  it('keeps a body that belongs wholly to one tenant exactly as Meta sent it', () => {
    const raw = Buffer.from(
      metaJson({
        object: 'whatsapp_business_account',
        entry: [
          { id: 'w1', changes: [textMessageChange({ phoneNumberId: '111', wamid: 'm1', text: 'a' })] },
          { id: 'w2', changes: [statusChange({ phoneNumberId: '112', wamid: 'm0', status: 'read' })] },
        ],
      }),
    );
    const sig = signMetaBody('s'.repeat(16), raw);
    const routed = routeWebhook(raw, sig, parseWebhook(raw)!, tenantOf);
    expect(routed.parts).toHaveLength(1);
    const pt = EnvelopePlaintextSchema.parse(JSON.parse(Buffer.from(routed.parts[0]!.plaintext).toString('utf8')));
    expect(routed.parts[0]!.kind).toBe('meta');
    expect(pt.kind).toBe('meta');
    if (pt.kind === 'meta') {
      expect(Buffer.from(pt.body, 'base64url').equals(raw)).toBe(true);
      expect(pt.signature).toBe(sig);
    }
    expect(routed.parts[0]!.changes).toBe(2);
  });

  it('routes every entry and change of a mixed batch, giving each tenant only its own', () => {
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'w1',
          changes: [
            textMessageChange({ phoneNumberId: '111', wamid: 'a1', text: 'for A' }),
            textMessageChange({ phoneNumberId: '222', wamid: 'b1', text: 'for B' }),
            textMessageChange({ phoneNumberId: '999', wamid: 'x1', text: 'for nobody' }),
          ],
        },
        { id: 'w2', changes: [statusChange({ phoneNumberId: '222', wamid: 'b0', status: 'delivered' })] },
        { id: 'w3', changes: [{ field: 'account_update', value: { event: 'VERIFIED_ACCOUNT' } }] },
      ],
    };
    const raw = Buffer.from(metaJson(body));
    const routed = routeWebhook(raw, signMetaBody('s'.repeat(16), raw), parseWebhook(raw)!, tenantOf);
    expect(routed.unknownPhoneNumber).toBe(1);
    expect(routed.noPhoneNumber).toBe(1);
    const byTenant = new Map(routed.parts.map((p) => [p.tenantId, p]));
    expect([...byTenant.keys()].sort()).toEqual(['clinic-a', 'clinic-b']);
    const opened = (tenant: string) => EnvelopePlaintextSchema.parse(JSON.parse(Buffer.from(byTenant.get(tenant)!.plaintext).toString('utf8')));
    const a = opened('clinic-a');
    const b = opened('clinic-b');
    expect(byTenant.get('clinic-a')!.kind).toBe('relay');
    expect(a.kind).toBe('relay');
    expect(b.kind).toBe('relay');
    if (a.kind !== 'relay' || b.kind !== 'relay') return;
    expect(a.body).toContain('for A');
    expect(a.body).not.toContain('for B');
    expect(a.body).not.toContain('for nobody');
    expect(b.body).toContain('for B');
    expect(b.body).toContain('b0');
    expect(b.body).not.toContain('for A');
    const bParsed = JSON.parse(b.body) as { object: string; entry: { id: string; changes: unknown[] }[] };
    expect(bParsed.object).toBe('whatsapp_business_account');
    expect(bParsed.entry.map((e) => [e.id, e.changes.length])).toEqual([
      ['w1', 1],
      ['w2', 1],
    ]);
    // One digest per item (the message, the status), each with its kind.
    expect(byTenant.get('clinic-b')!.items.map((i) => i.split('\0')[0])).toEqual(['m', 's']);
  });

  it('accepts exactly the bodies the routing schema accepts, every node of a batch replaced by every kind of JSON value', () => {
    const base = batchWebhook([
      textMessageChange({ phoneNumberId: '111', wamid: 'wamid.T', text: 'x' }),
      statusChange({ phoneNumberId: '222', wamid: 'wamid.S', status: 'read' }),
    ]) as unknown;
    const replacements: unknown[] = [undefined, null, 0, 'x', true, [], {}, [{}]];
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(base, []);
    let accepted = 0;
    let refused = 0;
    for (const path of paths) {
      for (const r of replacements) {
        const body = structuredClone(base) as Record<string | number, unknown>;
        let mutated: unknown = r;
        if (path.length > 0) {
          let at = body;
          for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
          if (r === undefined) delete at[path.at(-1)!];
          else at[path.at(-1)!] = r;
          mutated = body;
        }
        const raw = Buffer.from(JSON.stringify(mutated) ?? 'null');
        const schema = RoutableWebhookSchema.safeParse(JSON.parse(raw.toString()));
        const parsed = parseWebhook(raw);
        expect({ path, r, ok: parsed !== null }).toEqual({ path, r, ok: schema.success });
        if (schema.success) {
          expect(parsed).toEqual(schema.data);
          accepted += 1;
        } else refused += 1;
      }
    }
    // Both sides of the line are exercised: mutations of what routing reads are refused, the rest pass.
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(50);
  });

  it('refuses a body that is not a webhook', () => {
    expect(parseWebhook(Buffer.from('not json'))).toBeNull();
    expect(parseWebhook(Buffer.from('{"object":"x"}'))).toBeNull();
    expect(parseWebhook(Buffer.from('{"object":"x","entry":[{"id":"1","changes":[{"field":"f"}]}]}'))).toBeNull();
  });
});

describe('item identities for dedup', () => {
  const itemsOf = (body: unknown) => {
    const raw = Buffer.from(JSON.stringify(body));
    return routeWebhook(raw, signMetaBody('s'.repeat(16), raw), parseWebhook(raw)!, () => 'clinic-a').parts[0]!.items;
  };
  const reordered = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(reordered) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reordered(x)])) : v;

  it('is the same for the same item in any key order or batch, and differs for a changed item under the same id', () => {
    const react = (emoji: string) => reactionChange({ phoneNumberId: '111', wamid: 'wamid.R', reactsTo: 'wamid.O', emoji });
    const once = itemsOf(batchWebhook([react('👍')]));
    expect(itemsOf(reordered(batchWebhook([react('👍')])))).toEqual(once);
    expect(itemsOf(batchWebhook([react('👍'), textMessageChange({ phoneNumberId: '111', wamid: 'wamid.T', text: 'x' })], 'other-entry'))[0]).toBe(once[0]);
    expect(itemsOf(batchWebhook([react('❤️')]))).not.toEqual(once);
    expect(itemsOf(batchWebhook([react('')]))).not.toEqual(once);
    const status = (s: 'sent' | 'read') => itemsOf(batchWebhook([statusChange({ phoneNumberId: '111', wamid: 'wamid.S', status: s })]));
    expect(status('sent')).not.toEqual(status('read'));
  });

  it('keeps the dedup keys stored before: each digest is the one of the whole item with its context', () => {
    // The formula the relay used before the digests were written piece by piece; a different digest
    // would make every retry of an item received before an upgrade look new.
    const reference = (change: { field: string; value: Record<string, unknown> }): string[] => {
      const { messages, statuses, contacts, ...context } = change.value;
      const sha = (kind: string, item: unknown) => `${kind}\0${createHash('sha256').update(canonicalJson(item)).digest('base64url')}`;
      const contactsFor = (waId: unknown) => {
        if (!Array.isArray(contacts)) return [];
        const named = (contacts as { wa_id?: unknown }[]).filter((c) => c?.wa_id === waId);
        return named.length > 0 ? named : contacts;
      };
      const out: string[] = [];
      if (Array.isArray(messages)) for (const m of messages as { from?: unknown }[]) out.push(sha('m', { field: change.field, context, contacts: contactsFor(m?.from), message: m }));
      if (Array.isArray(statuses)) for (const st of statuses as { recipient_id?: unknown }[]) out.push(sha('s', { field: change.field, context, contacts: contactsFor(st?.recipient_id), status: st }));
      if (out.length === 0) out.push(sha('c', { field: change.field, value: change.value }));
      return out;
    };
    const twoMessages = textMessageChange({ phoneNumberId: '111', wamid: 'wamid.A', text: 'a', from: '4915100000001', name: 'A' });
    const second = textMessageChange({ phoneNumberId: '111', wamid: 'wamid.B', text: 'b', from: '4915100000002', name: 'B' });
    const merged = structuredClone(twoMessages) as { field: string; value: Record<string, unknown[]> };
    merged.value.messages!.push(...(second.value as Record<string, unknown[]>).messages!);
    merged.value.contacts!.push(...(second.value as Record<string, unknown[]>).contacts!);
    const changes = [
      textMessageChange({ phoneNumberId: '111', wamid: 'wamid.T', text: 'Grüße 😊' }),
      reactionChange({ phoneNumberId: '111', wamid: 'wamid.R', reactsTo: 'wamid.O', emoji: '' }),
      statusChange({ phoneNumberId: '111', wamid: 'wamid.S', status: 'delivered' }),
      merged,
      { field: 'message_template_status_update', value: { event: 'APPROVED', message_template_id: 1, metadata: { phone_number_id: '111' } } },
      { field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: '111' }, messages: [], statuses: [], contacts: 'odd' } },
    ] as { field: string; value: Record<string, unknown> }[];
    for (const change of changes) expect(itemsOf(batchWebhook([change as never]))).toEqual(reference(change));
    expect(itemsOf(batchWebhook([merged as never]))).toHaveLength(2);
  });

  it('writes canonical JSON exactly as sorted keys through JSON.stringify would, whatever a string holds', () => {
    // The formula the dedup keys were stored under: keys sorted as strings, JSON.stringify for every value.
    const reference = (v: unknown): string =>
      Array.isArray(v)
        ? `[${v.map(reference).join(',')}]`
        : v !== null && typeof v === 'object'
          ? `{${Object.keys(v)
              .sort()
              .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
              .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`)
              .join(',')}}`
          : (JSON.stringify(v) ?? 'null');
    const strings = ['', 'plain ASCII', 'Grüße', 'a "quoted" word', 'back\\slash', 'tab\tnew\nline\u0000\u001f', '\u2028\u2029', 'emoji 😊', 'lone \ud83d high', 'lone \ude0a low', '\u007f\u0080'];
    const value = {
      z: strings,
      a: { already: 1, before: 2, sorted: [true, false, null, 0, -1.5, 1e21] },
      '10': 'numeric-looking keys come first in Object.keys but sort as strings',
      '2': { y: undefined, x: 'undefined members are left out' },
      'b"key': strings.map((s) => ({ [s]: s })),
    };
    expect(canonicalJson(value)).toBe(reference(value));
    for (const s of strings) expect(canonicalJson(s)).toBe(JSON.stringify(s));
  });

  it('bounds nesting outside strings only', () => {
    expect(nestingDepthExceeds(Buffer.from(`${'['.repeat(64)}${']'.repeat(64)}`))).toBe(false);
    expect(nestingDepthExceeds(Buffer.from(`${'['.repeat(65)}${']'.repeat(65)}`))).toBe(true);
    expect(nestingDepthExceeds(Buffer.from(`["${'[{'.repeat(100)}\\", "\\"[["]`))).toBe(false);
    expect(nestingDepthExceeds(Buffer.from(`["\\"${'['.repeat(100)}"]`))).toBe(false);
  });
});
