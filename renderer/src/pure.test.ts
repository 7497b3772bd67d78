import { describe, expect, it } from 'vitest';
import { HIGHLIGHT_END as E, HIGHLIGHT_START as S } from '../../shared/rpc';
import { effectiveLanguage, LANGUAGES, pickLanguage } from './i18n/strings';
import { splitHighlights } from './inbox/Highlighted';
import { contactLabel, formatNumber, initials } from './inbox/names';
import { fillTemplate } from './thread/Composer';

describe('search highlights', () => {
  it('turn marker pairs into hit segments and keep everything else as plain text', () => {
    expect(splitHighlights(`Ihr ${S}Rezept${E} ist ${S}fertig${E}.`)).toEqual([
      { text: 'Ihr ', hit: false },
      { text: 'Rezept', hit: true },
      { text: ' ist ', hit: false },
      { text: 'fertig', hit: true },
      { text: '.', hit: false },
    ]);
  });

  it('never interpret HTML and survive unbalanced markers', () => {
    expect(splitHighlights(`<img src=x onerror=alert(1)> ${S}<b>`)).toEqual([
      { text: '<img src=x onerror=alert(1)> ', hit: false },
      { text: '<b>', hit: true },
    ]);
    expect(splitHighlights(`${E}stray`)).toEqual([{ text: `${E}stray`, hit: false }]);
    expect(splitHighlights('')).toEqual([]);
  });
});

describe('template preview', () => {
  it('fills numbered variables and leaves missing ones visible', () => {
    expect(fillTemplate('Hello {{1}}, see you on {{2}}.', ['Pieter', 'Friday'])).toBe('Hello Pieter, see you on Friday.');
    expect(fillTemplate('Hello {{1}}, see you on {{2}}.', ['Pieter'])).toBe('Hello Pieter, see you on {{2}}.');
    expect(fillTemplate('{{1}}{{1}}', ['x'])).toBe('xx');
  });
});

describe('language', () => {
  it('follows the OS preference when we speak it, else English', () => {
    expect(pickLanguage(['de-AT', 'en'])).toBe('de');
    expect(pickLanguage(['fr-FR', 'nl-BE'])).toBe('nl');
    expect(pickLanguage(['fr-FR'])).toBe('en');
    expect(pickLanguage([])).toBe('en');
  });

  it('has every string in every language, none left empty', () => {
    const keys = Object.keys(LANGUAGES.en).sort();
    for (const strings of Object.values(LANGUAGES)) {
      expect(Object.keys(strings).sort()).toEqual(keys);
      for (const value of Object.values(strings)) if (typeof value === 'string') expect(value.trim()).not.toBe('');
    }
  });
});

describe('contact names', () => {
  it('prefer the name staff gave, then the WhatsApp profile name, then the number', () => {
    expect(contactLabel({ displayName: 'Mw. de Vries', profileName: 'Anna', waId: '31612345678' }, '?')).toBe('Mw. de Vries');
    expect(contactLabel({ displayName: null, profileName: 'Anna', waId: '31612345678' }, '?')).toBe('Anna');
    expect(contactLabel({ displayName: null, profileName: null, waId: '31612345678' }, '?')).toBe('+31612345678');
    expect(contactLabel({ displayName: null, profileName: null, waId: null }, 'Unknown')).toBe('Unknown');
    expect(formatNumber('DE.1502576394655843')).toBe('DE.1502576394655843');
    expect(initials('Anna de Vries')).toBe('AV');
    expect(initials('+31612345678')).toBe('3');
    expect(initials('Zoë')).toBe('Z');
  });
});

describe('splitMessage', () => {
  it('keeps every character: the parts joined are the text, each within the limit', async () => {
    const { splitMessage } = await import('./thread/split');
    const text = `${'Lorem ipsum dolor sit amet, '.repeat(150)}\n\nمرحبا 👋🏽 ${'x'.repeat(5000)}`;
    const parts = splitMessage(text);
    expect(parts.join('')).toBe(text);
    for (const p of parts) expect([...p].length).toBeLessThanOrEqual(4096);
    expect(parts.length).toBe(3);
  });
});

describe('the language shown under a policy', () => {
  it('is the saved choice while allowed, else the policy’s first; without a policy the saved or the OS’s', () => {
    expect(effectiveLanguage('nl', ['de', 'nl'], ['en-GB'])).toBe('nl');
    expect(effectiveLanguage('en', ['de', 'nl'], ['en-GB'])).toBe('de');
    expect(effectiveLanguage(null, ['nl', 'en'], ['en-GB'])).toBe('nl');
    expect(effectiveLanguage(null, null, ['de-AT', 'en'])).toBe('de');
    expect(effectiveLanguage('en', null, ['de-AT'])).toBe('en');
  });
});
