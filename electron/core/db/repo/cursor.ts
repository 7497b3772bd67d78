import { z } from 'zod';
import { CodedError } from '../../../../shared/errors';

/**
 * Keyset cursors: the (time, id) of the last row of a page, opaque to callers. Keyset rather
 * than OFFSET so page 500 costs what page 1 costs and rows arriving meanwhile do not shift pages.
 */
const CursorSchema = z.tuple([z.number().int(), z.number().int()]);

export function encodeCursor(at: number, id: number): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

export function decodeCursor(cursor: string | null | undefined): [number, number] {
  if (!cursor) return [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  try {
    return CursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new CodedError('BAD_REQUEST', 'The page cursor is not valid; start again from the first page.');
  }
}

export const PageLimitSchema = z.number().int().min(1).max(200);

/**
 * Queries fetch `limit + 1` rows: the extra one only says whether another page exists. Returns
 * the page and the row the next cursor is made from (undefined when this was the last page).
 */
export function splitPage<T>(rows: T[], limit: number): { page: T[]; nextFrom: T | undefined } {
  if (rows.length <= limit) return { page: rows, nextFrom: undefined };
  const page = rows.slice(0, limit);
  return { page, nextFrom: page[page.length - 1] };
}
