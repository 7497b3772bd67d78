import type { Template } from '../../../../shared/rpc';
import type { MessageTemplate } from '../../graph/schemas';
import { stmt } from '../statements';
import type { Database } from '../types';

/**
 * The clinic's WhatsApp message templates as last synced from Meta. A sync replaces the whole set
 * in one transaction, so the picker never shows half of an old list and half of a new one, and a
 * template deleted at Meta disappears here too.
 */
export function replaceTemplates(db: Database, templates: readonly MessageTemplate[], now: number): number {
  return db.transaction(() => {
    stmt(db, 'DELETE FROM templates').run();
    const insert = stmt(
      db,
      `INSERT INTO templates (meta_id, name, language, status, category, components_json, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name, language) DO UPDATE SET meta_id = excluded.meta_id, status = excluded.status, category = excluded.category,
         components_json = excluded.components_json, synced_at = excluded.synced_at`,
    );
    for (const t of templates) insert.run(t.id, t.name, t.language, t.status, t.category, JSON.stringify(t.components), now);
    return templates.length;
  })();
}

interface Row {
  name: string;
  language: string;
  status: string;
  category: string | null;
  components_json: string;
}

/** The `{{1}}` / `{{name}}` placeholders of a body text, each once, in order of appearance. */
export function templatePlaceholders(bodyText: string): string[] {
  const seen: string[] = [];
  for (const m of bodyText.matchAll(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g)) {
    if (!seen.includes(m[1]!)) seen.push(m[1]!);
  }
  return seen;
}

function bodyOf(componentsJson: string): string {
  try {
    const components = JSON.parse(componentsJson) as Array<{ type?: string; text?: string }>;
    return components.find((c) => c.type?.toUpperCase() === 'BODY')?.text ?? '';
  } catch {
    return '';
  }
}

/** Meta's sample values for the body's variables (`example.body_text[0]`), which say what each one means. */
function examplesOf(componentsJson: string): string[] {
  try {
    const components = JSON.parse(componentsJson) as Array<{ type?: string; example?: { body_text?: unknown } }>;
    const first = (components.find((c) => c.type?.toUpperCase() === 'BODY')?.example?.body_text as unknown[] | undefined)?.[0];
    return Array.isArray(first) ? first.filter((v): v is string => typeof v === 'string').map((v) => v.slice(0, 200)) : [];
  } catch {
    return [];
  }
}

function toView(r: Row): Template {
  const bodyText = bodyOf(r.components_json);
  return {
    name: r.name,
    language: r.language,
    category: r.category ?? '',
    status: r.status,
    bodyText,
    parameterCount: templatePlaceholders(bodyText).length,
    examples: examplesOf(r.components_json),
  };
}

/** Templates for the picker; by default only those Meta approved (the only ones it will send). */
export function listTemplates(db: Database, opts: { approvedOnly?: boolean } = {}): Template[] {
  const rows = stmt(db, 'SELECT name, language, status, category, components_json FROM templates ORDER BY name, language').all() as Row[];
  return rows.map(toView).filter((t) => !(opts.approvedOnly ?? true) || t.status === 'APPROVED');
}

export function getTemplate(db: Database, name: string, language: string): Template | null {
  const r = stmt(db, 'SELECT name, language, status, category, components_json FROM templates WHERE name = ? AND language = ?').get(name, language) as Row | undefined;
  return r ? toView(r) : null;
}

/** The body with its placeholders filled, as the patient will read it (stored as the message text). */
export function renderTemplateBody(bodyText: string, parameters: readonly string[]): string {
  const names = templatePlaceholders(bodyText);
  return bodyText.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (whole, name: string) => {
    const i = names.indexOf(name);
    return i >= 0 && i < parameters.length ? parameters[i]! : whole;
  });
}
