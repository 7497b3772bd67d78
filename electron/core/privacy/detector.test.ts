import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FINDING_KINDS, detectPersonalData, maskPersonalData, type FindingKind } from './detector';

interface Labelled {
  lang: string;
  text: string;
  spans: { kind: FindingKind; start: number; end: number }[];
}

const SET: Labelled[] = readFileSync(join(import.meta.dirname, 'testdata', 'labelled.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0)
  .map((l) => JSON.parse(l) as Labelled);

/** The set was made in 2026; dates of birth are judged against that year so the table never drifts. */
const detect = (text: string) => detectPersonalData(text, { referenceYear: 2026 });

describe('detectPersonalData on the labelled set', () => {
  it('holds at least 300 sentences in nl, de, en and fr, every kind present', () => {
    expect(SET.length).toBeGreaterThanOrEqual(300);
    expect(new Set(SET.map((s) => s.lang))).toEqual(new Set(['nl', 'de', 'en', 'fr']));
    const kinds = new Set(SET.flatMap((s) => s.spans.map((x) => x.kind)));
    for (const k of FINDING_KINDS) expect(kinds, k).toContain(k);
  });

  it('reaches precision ≥ 0.95 and recall ≥ 0.90 for every kind (exact spans)', () => {
    const tally = Object.fromEntries(FINDING_KINDS.map((k) => [k, { tp: 0, fp: 0, fn: 0 }])) as Record<FindingKind, { tp: number; fp: number; fn: number }>;
    const misses: string[] = [];
    for (const s of SET) {
      const found = detect(s.text);
      const key = (x: { kind: string; start: number; end: number }) => `${x.kind}:${x.start}:${x.end}`;
      const expected = new Set(s.spans.map(key));
      const got = new Set(found.map(key));
      for (const f of found) {
        if (expected.has(key(f))) tally[f.kind].tp += 1;
        else {
          tally[f.kind].fp += 1;
          misses.push(`FP ${f.kind} "${s.text.slice(f.start, f.end)}" in: ${s.text}`);
        }
      }
      for (const x of s.spans) {
        if (!got.has(key(x))) {
          tally[x.kind].fn += 1;
          misses.push(`FN ${x.kind} "${s.text.slice(x.start, x.end)}" in: ${s.text}`);
        }
      }
    }
    const table = FINDING_KINDS.map((k) => {
      const { tp, fp, fn } = tally[k];
      return { kind: k, tp, fp, fn, precision: tp + fp === 0 ? 1 : tp / (tp + fp), recall: tp + fn === 0 ? 1 : tp / (tp + fn) };
    });
    console.log(
      ['kind          tp   fp   fn  precision  recall', ...table.map((r) => `${r.kind.padEnd(12)} ${String(r.tp).padStart(4)} ${String(r.fp).padStart(4)} ${String(r.fn).padStart(4)}  ${r.precision.toFixed(3).padStart(9)}  ${r.recall.toFixed(3).padStart(6)}`)].join('\n'),
    );
    if (misses.length) console.log(misses.slice(0, 40).join('\n'));
    for (const r of table) {
      expect(r.precision, `precision of ${r.kind}`).toBeGreaterThanOrEqual(0.95);
      expect(r.recall, `recall of ${r.kind}`).toBeGreaterThanOrEqual(0.9);
    }
  });
});

describe('detectPersonalData by hand', () => {
  it('gives UTF-16 offsets of each identifier, in order', () => {
    const text = '😀 BSN 111222333, mail a.b@example.org';
    const found = detect(text);
    expect(found.map((f) => [f.kind, text.slice(f.start, f.end)])).toEqual([
      ['bsn', '111222333'],
      ['email', 'a.b@example.org'],
    ]);
    expect(found[0]!.confidence).toBeGreaterThan(0.9);
  });

  it('tells check digits from lookalikes', () => {
    expect(detect('BSN 111222334')).toEqual([]);
    expect(detect('NHS 943 476 5919').map((f) => f.kind)).toEqual(['nhs']);
    expect(detect('NHS 943 476 5918')).toEqual([]);
    expect(detect('IBAN NL91ABNA0417164300').map((f) => f.kind)).toEqual(['iban']);
    expect(detect('IBAN NL92ABNA0417164300')).toEqual([]);
    expect(detect('Bestelnummer 111222333')).toEqual([]);
    expect(detect('Afspraak op 12-03-2026 om 10:30')).toEqual([]);
    expect(detect('geboren op 12-03-1985').map((f) => f.kind)).toEqual(['date_of_birth']);
  });

  it('masks what it finds', () => {
    expect(maskPersonalData('Bel 06-12345678 of mail x@y.nl', detect('Bel 06-12345678 of mail x@y.nl'))).toBe('Bel ••• of mail •••');
  });

  it('is pure: the same text, the same findings; no text, no findings', () => {
    const text = 'Call 07911 123456, DOB 03/04/1970';
    expect(detect(text)).toEqual(detect(text));
    expect(detect('')).toEqual([]);
  });
});
