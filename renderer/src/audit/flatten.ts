import type { AuditEntryView } from '../../../shared/rpc';

/** Entries of all loaded pages, newest first, each once (a page may overlap the next after new entries). */
export function flattenBySeq(pages: { items: AuditEntryView[] }[] | undefined): AuditEntryView[] {
  const seen = new Set<number>();
  const out: AuditEntryView[] = [];
  for (const page of pages ?? [])
    for (const e of page.items)
      if (!seen.has(e.seq)) {
        seen.add(e.seq);
        out.push(e);
      }
  return out;
}
