import { z } from 'zod';
import { stmt } from '../statements';
import type { Database } from '../types';
import type { Page } from './conversations';
import { PageLimitSchema, splitPage } from './cursor';

export const SearchMessagesSchema = z.object({
  query: z.string().trim().min(1).max(200),
  conversationId: z.number().int().positive().optional(),
  limit: PageLimitSchema.default(30),
  cursor: z.string().regex(/^\d+$/).nullish(),
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
export function toFtsQuery(input: string): string | null {
  const words = input.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
  if (words.length === 0) return null;
  // The column filter keeps the words to message text (the index also holds conversation ids).
  return `text : (${words.map((w, i) => `"${w.replaceAll('"', '""')}"${i === words.length - 1 ? '*' : ''}`).join(' ')})`;
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

const SEARCH_SELECT = `
  SELECT m.id, m.conversation_id, m.direction, m.type, m.sent_at,
         snippet(messages_fts, 0, '${OPEN}', '${CLOSE}', '…', 16) AS snippet,
         coalesce(ct.display_name, ct.profile_name, ct.username) AS contact_name
  FROM messages_fts
  JOIN messages m ON m.id = messages_fts.rowid
  JOIN conversations c ON c.id = m.conversation_id
  JOIN contacts ct ON ct.id = c.contact_id`;

/**
 * Full-text search, newest message first. Within one conversation, FTS5 intersects the
 * conversation's posting list with the words' (see migration 0030). Ordered by message id (arrival order) because FTS5
 * walks its index by rowid: a common word among a million messages still costs one short scan
 * instead of a sort of every match.
 */
export function searchMessages(db: Database, input: SearchMessagesInput): Page<SearchHit> {
  const { query, conversationId, limit, cursor } = SearchMessagesSchema.parse(input);
  const fts = toFtsQuery(query);
  if (!fts) return { items: [], nextCursor: null };
  const before = cursor ? Number(cursor) : Number.MAX_SAFE_INTEGER;
  const rows = (
    conversationId === undefined
      ? stmt(db, `${SEARCH_SELECT} WHERE messages_fts MATCH ? AND messages_fts.rowid < ? ORDER BY messages_fts.rowid DESC LIMIT ?`).all(
          fts,
          before,
          limit + 1,
        )
      : stmt(
          db,
          `${SEARCH_SELECT} WHERE messages_fts MATCH ? AND messages_fts.rowid < ? ORDER BY messages_fts.rowid DESC LIMIT ?`,
        ).all(`conversation_id : "${conversationId}" AND ${fts}`, before, limit + 1)
  ) as { id: number; conversation_id: number; direction: 'inbound' | 'outbound'; type: string; sent_at: number; snippet: string; contact_name: string | null }[];
  const { page, nextFrom } = splitPage(rows, limit);
  return {
    items: page.map((r) => ({
      messageId: r.id,
      conversationId: r.conversation_id,
      contactName: r.contact_name,
      direction: r.direction,
      type: r.type,
      sentAt: r.sent_at,
      snippet: segments(r.snippet),
    })),
    nextCursor: nextFrom ? String(nextFrom.id) : null,
  };
}
