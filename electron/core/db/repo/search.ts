import { z } from 'zod';
import { ALL_SHARDS, shardOf, shardTable } from '../searchShards';
import { stmt } from '../statements';
import type { Database } from '../types';
import type { Page } from './conversations';
import { PageLimitSchema } from './cursor';

export const SearchMessagesSchema = z.object({
  query: z.string().trim().min(1).max(200),
  conversationId: z.number().int().positive().optional(),
  limit: PageLimitSchema.default(30),
  /** `e<id>`: more whole-word hits before message id; `p<id>` (or `p`: from the newest): words that only start with the last one. */
  cursor: z.string().regex(/^(?:e\d+|p\d*)$/).nullish(),
});
export type SearchMessagesInput = z.input<typeof SearchMessagesSchema>;

/** A snippet as segments, so the renderer highlights without ever parsing markup (no injection). */
export type SnippetSegment = { text: string; match: boolean };

export interface SearchHit {
  messageId: number;
  conversationId: number;
  contactName: string | null;
  direction: 'inbound' | 'outbound';
  type: string;
  sentAt: number;
  snippet: SnippetSegment[];
}

// Private-use characters: they cannot come from the tokenizer's output of real text markers.
const OPEN = '\u{E000}';
const CLOSE = '\u{E001}';

/**
 * Turns what a person typed into a safe FTS5 query: each word a quoted phrase (so `"`, `*`, `-`,
 * `OR` and `NEAR` are just text), all words required, the last one a prefix so results come as
 * they type. Accents are folded by the index's `remove_diacritics 2` tokenizer, so "muller"
 * finds "Müller".
 */
export function toFtsQuery(input: string, lastIsPrefix = true): string | null {
  const words = input.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
  if (words.length === 0) return null;
  // The column filter keeps the words to message text (the index also holds conversation ids).
  return `text : (${words.map((w, i) => `"${w.replaceAll('"', '""')}"${lastIsPrefix && i === words.length - 1 ? '*' : ''}`).join(' ')})`;
}

function segments(snippet: string): SnippetSegment[] {
  const out: SnippetSegment[] = [];
  for (const part of snippet.split(OPEN)) {
    const close = part.indexOf(CLOSE);
    if (close === -1) {
      if (part) out.push({ text: part, match: false });
      continue;
    }
    if (close > 0) out.push({ text: part.slice(0, close), match: true });
    const rest = part.slice(close + CLOSE.length);
    if (rest) out.push({ text: rest, match: false });
  }
  return out;
}

/**
 * Hits from the given shards of the index (`db/searchShards.ts`), newest first: each shard yields
 * its matches in rowid order and SQLite merges them (a MERGE of the UNION ALL, no sort), so the
 * LIMIT stops every shard after the rows it contributes and snippets are made only for those.
 */
const searchSql = (shards: readonly number[]) => `
  SELECT m.id, m.conversation_id, m.direction, m.type, m.sent_at, h.snippet,
         coalesce(ct.display_name, ct.profile_name, ct.username) AS contact_name
  FROM (${shards
    .map((k) => shardTable(k))
    .map((t) => `SELECT rowid AS id, snippet(${t}, 0, '${OPEN}', '${CLOSE}', '…', 16) AS snippet FROM ${t} WHERE ${t} MATCH @q AND rowid < @before`)
    .join(' UNION ALL ')}
        ORDER BY id DESC LIMIT @n) h
  JOIN messages m ON m.id = h.id
  JOIN conversations c ON c.id = m.conversation_id
  JOIN contacts ct ON ct.id = c.contact_id
  ORDER BY h.id DESC`;

/**
 * Full-text search: messages holding every word as typed (the last also as a whole word) come
 * first, newest first; then messages where the last word only begins a longer word ("termin" →
 * "termine"), newest first. Both walk FTS5's index by rowid, so a common word among a million
 * messages still costs one short scan instead of a sort of every match. The two phases are why:
 * a prefix query makes FTS5 merge the whole posting list of every word with that prefix before
 * the first row (80 ms for the most common word of the 1M-message bench clinic), while a whole
 * word streams (under a millisecond); the prefix phase runs only once the whole-word hits run out.
 * Within one conversation, FTS5 intersects the conversation's posting list with the words', in
 * that conversation's shard alone.
 */
export function searchMessages(db: Database, input: SearchMessagesInput): Page<SearchHit> {
  const { query, conversationId, limit, cursor } = SearchMessagesSchema.parse(input);
  const prefix = toFtsQuery(query);
  const exact = toFtsQuery(query, false);
  if (!prefix || !exact) return { items: [], nextCursor: null };
  const scoped = (q: string) => (conversationId === undefined ? q : `conversation_id : "${conversationId}" AND (${q})`);
  const sql = searchSql(conversationId === undefined ? ALL_SHARDS : [shardOf(conversationId)]);
  const run = (q: string, before: number, n: number): SearchRow[] => (n <= 0 ? [] : (stmt(db, sql).all({ q: scoped(q), before, n }) as SearchRow[]));
  const prefixOnly = `(${prefix}) NOT (${exact})`;
  const from = (c: string) => (c.length > 1 ? Number(c.slice(1)) : Number.MAX_SAFE_INTEGER);

  let rows: SearchRow[];
  let nextCursor: string | null;
  if (cursor?.startsWith('p')) {
    const more = run(prefixOnly, from(cursor), limit + 1);
    rows = more.slice(0, limit);
    nextCursor = more.length > limit ? `p${rows[rows.length - 1]!.id}` : null;
  } else {
    const whole = run(exact, cursor ? from(cursor) : Number.MAX_SAFE_INTEGER, limit + 1);
    if (whole.length > limit) {
      rows = whole.slice(0, limit);
      nextCursor = `e${rows[rows.length - 1]!.id}`;
    } else {
      const room = limit - whole.length;
      const rest = run(prefixOnly, Number.MAX_SAFE_INTEGER, room + 1);
      rows = [...whole, ...rest.slice(0, room)];
      nextCursor = rest.length > room ? (room === 0 ? 'p' : `p${rest[room - 1]!.id}`) : null;
    }
  }
  return {
    items: rows.map((r) => ({
      messageId: r.id,
      conversationId: r.conversation_id,
      contactName: r.contact_name,
      direction: r.direction,
      type: r.type,
      sentAt: r.sent_at,
      snippet: segments(r.snippet),
    })),
    nextCursor,
  };
}

interface SearchRow {
  id: number;
  conversation_id: number;
  direction: 'inbound' | 'outbound';
  type: string;
  sent_at: number;
  snippet: string;
  contact_name: string | null;
}
