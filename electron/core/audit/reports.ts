import type { AuditEntryView, AuditFilter } from '../../../shared/rpc';
import { decodeCursor, encodeCursor, splitPage } from '../db/repo/cursor';
import type { Database } from '../db/types';
import { AUDIT_COLUMNS, rowFromRaw, type AuditRawRow, type AuditRow } from './auditLog';

/**
 * The auditor's reports over the audit log: filtered pages newest first, and the patients an
 * auditor can filter by. Names come from the contacts table; message text is never read here.
 */

/** The SQL for the entries a filter selects, newest first, after `cursor` (as `(at, seq)`). */
function filteredSql(filter: AuditFilter, after: [number, number] | null, limit: number | null): { sql: string; params: unknown[] } {
  const byPatient = filter.contactId !== undefined;
  // "Who accessed this patient" walks the patient's rows of the side table, already in time order.
  const t = byPatient ? 'c' : 'a';
  const where: string[] = [];
  const params: unknown[] = [];
  if (byPatient) {
    where.push('c.contact_id = ?');
    params.push(filter.contactId);
  }
  const equal: [string, unknown][] = [
    ['a.user_id', filter.userId],
    ['a.session_id', filter.sessionId],
    ['a.action', filter.action],
  ];
  for (const [column, value] of equal) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    params.push(value);
  }
  if (filter.from !== undefined) {
    where.push(`${t}.at >= ?`);
    params.push(filter.from);
  }
  if (filter.to !== undefined) {
    where.push(`${t}.at < ?`);
    params.push(filter.to);
  }
  if (after) {
    where.push(`(${t}.at, ${t}.seq) < (?, ?)`);
    params.push(after[0], after[1]);
  }
  const columns = AUDIT_COLUMNS.split(', ')
    .map((c) => `a.${c}`)
    .join(', ');
  const from = byPatient ? 'audit_contacts c JOIN audit_log a ON a.seq = c.seq' : 'audit_log a';
  const sql =
    `SELECT ${columns} FROM ${from}` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${t}.at DESC, ${t}.seq DESC` +
    (limit === null ? '' : ` LIMIT ${Math.trunc(limit)}`);
  return { sql, params };
}

/** One page of the entries a filter selects, newest first, with the cursor of the next page. */
export function queryAudit(db: Database, filter: AuditFilter, page: { cursor?: string | undefined; limit: number }): { rows: AuditRow[]; nextCursor: string | null } {
  const after = page.cursor ? decodeCursor(page.cursor) : null;
  const { sql, params } = filteredSql(filter, after, page.limit + 1);
  const raw = db.prepare(sql).raw().all(...params) as AuditRawRow[];
  const { page: rows, nextFrom } = splitPage(raw, page.limit);
  return { rows: rows.map(rowFromRaw), nextCursor: nextFrom ? encodeCursor(nextFrom[1], nextFrom[0]) : null };
}

/** Every entry a filter selects, newest first (for an export). */
export function* allFiltered(db: Database, filter: AuditFilter): Generator<AuditRow> {
  const { sql, params } = filteredSql(filter, null, null);
  for (const raw of db.prepare(sql).raw().iterate(...params) as IterableIterator<AuditRawRow>) yield rowFromRaw(raw);
}

/** The names the clinic knows these patients by (display name, else WhatsApp profile name). */
export function contactNames(db: Database, ids: Iterable<number>): Map<number, string | null> {
  const list = [...new Set(ids)];
  const names = new Map<number, string | null>();
  if (list.length === 0) return names;
  const rows = db
    .prepare('SELECT id, coalesce(display_name, profile_name) AS name FROM contacts WHERE id IN (SELECT value FROM json_each(?))')
    .all(JSON.stringify(list)) as { id: number; name: string | null }[];
  for (const r of rows) names.set(r.id, r.name);
  return names;
}

export function contactIdsOf(row: Pick<AuditRow, 'contact_ids'>): number[] {
  const parsed: unknown = JSON.parse(row.contact_ids);
  return Array.isArray(parsed) ? parsed.filter((v): v is number => Number.isInteger(v)) : [];
}

export function rolesOf(role: string): string[] {
  return role === '-' || role === '' ? [] : role.split('+');
}

/** Entries as the auditor's screen shows them; names looked up once for the whole page. */
export function toViews(db: Database, rows: AuditRow[]): AuditEntryView[] {
  const names = contactNames(
    db,
    rows.flatMap((r) => contactIdsOf(r)),
  );
  return rows.map((r) => ({
    seq: r.seq,
    at: r.at,
    userId: r.user_id,
    displayName: r.display_name,
    roles: rolesOf(r.role),
    sessionId: r.session_id,
    action: r.action,
    method: r.method,
    contacts: contactIdsOf(r).map((id) => ({ id, name: names.get(id) ?? null })),
    origin: r.origin,
    outcome: r.outcome as AuditEntryView['outcome'],
    errorCode: r.error_code,
    reason: r.reason,
  }));
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Patients by name, username or number, for the auditor's filter: at most 20, names only. */
export function findPatients(db: Database, query: string): { contactId: number; name: string | null }[] {
  const text = `%${likeEscape(query.trim())}%`;
  const digits = query.replace(/\D/g, '');
  const number = digits.length >= 3 ? `%${digits}%` : null;
  return db
    .prepare(
      `SELECT id AS contactId, coalesce(display_name, profile_name) AS name FROM contacts
       WHERE display_name LIKE @text ESCAPE '\\' OR profile_name LIKE @text ESCAPE '\\' OR username LIKE @text ESCAPE '\\'
          OR (@number IS NOT NULL AND wa_id LIKE @number)
       ORDER BY name IS NULL, name COLLATE NOCASE, id LIMIT 20`,
    )
    .all({ text, number }) as { contactId: number; name: string | null }[];
}
