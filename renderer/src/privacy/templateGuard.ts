import { useCallback } from 'react';
import type { PersonalDataFinding } from '../../../shared/rpc';
import { useOutgoingCheck, type OutgoingCheck } from './SendGuard';

/** `{{1}}`, `{{2}}`, … as the template picker fills them (the preview and what is sent agree). */
const PLACEHOLDER = /\{\{(\d+)\}\}/g;

/**
 * The filled template text with each variable's findings moved to where that value stands in it
 * (a value used twice is marked twice). Only what staff typed is looked at: the template's own
 * approved text is the clinic's (its address, its phone number) and would otherwise warn on every send.
 */
export function placeTemplateFindings(body: string, values: readonly string[], findings: readonly (readonly PersonalDataFinding[])[]): { text: string; findings: PersonalDataFinding[] } {
  let text = '';
  let at = 0;
  const placed: PersonalDataFinding[] = [];
  for (const m of body.matchAll(PLACEHOLDER)) {
    const i = Number(m[1]) - 1;
    const value = values[i];
    text += body.slice(at, m.index);
    at = m.index + m[0].length;
    if (!value) {
      text += m[0];
      continue;
    }
    for (const f of findings[i] ?? []) placed.push({ ...f, start: text.length + f.start, end: text.length + f.end });
    text += value;
  }
  return { text: text + body.slice(at), findings: placed.sort((a, b) => a.start - b.start) };
}

/**
 * The template picker's check before sending: each variable through `privacy.checkOutgoing` (the
 * core's detector, nothing stored), the findings placed in the filled text for `SendGuard`, and
 * which variables had any (to return the cursor there).
 */
export function useTemplateCheck(): (body: string, values: readonly string[]) => Promise<{ text: string; check: OutgoingCheck; flagged: number[] }> {
  const checkOutgoing = useOutgoingCheck();
  return useCallback(
    async (body, values) => {
      const checks = await Promise.all(values.map((v) => (v.trim() ? checkOutgoing(v) : null)));
      const placed = placeTemplateFindings(
        body,
        values,
        checks.map((c) => c?.findings ?? []),
      );
      const mode = checks.find((c) => c !== null)?.mode ?? 'warn';
      const flagged = checks.flatMap((c, i) => ((c?.findings.length ?? 0) > 0 ? [i] : []));
      return { text: placed.text, check: { findings: placed.findings, mode, blocked: checks.some((c) => c?.blocked === true) }, flagged };
    },
    [checkOutgoing],
  );
}
