import { describe, expect, it } from 'vitest';
import { fillTemplate } from '../thread/Composer';
import { placeTemplateFindings } from './templateGuard';

describe('the template guard places each variable’s findings in the filled text', () => {
  const body = 'Beste {{1}}, wij mailen de uitslag naar {{2}}. Groet, {{1}}';
  const values = ['Pieter', 'p.bakker@example.org'];
  const email = { kind: 'email' as const, start: 0, end: 20, confidence: 0.99 };

  it('marks the value where it stands in the text the patient receives, once for every place it is used', () => {
    const placed = placeTemplateFindings(body, values, [[], [email]]);
    expect(placed.text).toBe(fillTemplate(body, values));
    expect(placed.findings.map((f) => placed.text.slice(f.start, f.end))).toEqual(['p.bakker@example.org']);
    const twice = placeTemplateFindings(body, ['info@example.org', 'x'], [[{ ...email, end: 16 }], []]);
    expect(twice.findings.map((f) => [f.start, twice.text.slice(f.start, f.end)])).toEqual([
      [6, 'info@example.org'],
      [twice.text.lastIndexOf('info@'), 'info@example.org'],
    ]);
  });

  it('never flags the template’s own text, and leaves an unfilled placeholder as it is', () => {
    const placed = placeTemplateFindings('Bel ons op 020-1234567 over {{1}} en {{2}}', ['uw recept'], [[], []]);
    expect(placed).toEqual({ text: 'Bel ons op 020-1234567 over uw recept en {{2}}', findings: [] });
  });
});
