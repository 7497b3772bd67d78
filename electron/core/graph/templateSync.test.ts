import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listTemplates } from '../db/repo/templates';
import { createGraphSimulator, type GraphSimulator, type SimTemplate } from '../testing/graphSimulator';
import { createTestDb, type TestDb } from '../testing/testDb';
import { createGraphClient, type GraphClient } from './client';
import { syncTemplates } from './templateSync';

const TOKEN = 'EAAtemplate-test-token-00';
const WABA = '100000000000001';
const logger = pino({ level: 'silent' });

const tpl = (name: string, status: SimTemplate['status'], text: string): SimTemplate => ({ name, language: 'de', status, category: 'UTILITY', components: [{ type: 'BODY', text }] });

describe('template sync', () => {
  let t: TestDb;
  let sim: GraphSimulator;
  let client: GraphClient;

  beforeEach(async () => {
    t = createTestDb();
    sim = createGraphSimulator({
      accessToken: TOKEN,
      phoneNumberId: '110000000000001',
      wabaId: WABA,
      templatePageSize: 2,
      templates: [
        tpl('appointment_reminder', 'APPROVED', 'Ihr Termin ist am {{1}} um {{2}}.'),
        tpl('results_ready', 'APPROVED', 'Ihre Befunde liegen vor.'),
        tpl('promo', 'REJECTED', 'Angebot'),
        tpl('recall', 'APPROVED', 'Hallo {{first_name}}, Zeit für Ihre Kontrolle.'),
        tpl('draft', 'PENDING', 'Entwurf'),
      ],
    });
    await sim.listen();
    client = createGraphClient({ baseUrl: sim.url, apiVersion: 'v23.0', getAccessToken: async () => TOKEN, logger });
  });

  afterEach(async () => {
    await sim.close();
    t.cleanup();
  });

  it('stores every approved template from all pages, with placeholders counted for the picker', async () => {
    expect(await syncTemplates({ db: t.db, client, wabaId: WABA, now: () => 1, logger })).toEqual({ count: 3 });
    expect(sim.hits.templates).toBe(2);
    expect(listTemplates(t.db)).toEqual([
      { name: 'appointment_reminder', language: 'de', category: 'UTILITY', status: 'APPROVED', bodyText: 'Ihr Termin ist am {{1}} um {{2}}.', parameterCount: 2, examples: [] },
      { name: 'recall', language: 'de', category: 'UTILITY', status: 'APPROVED', bodyText: 'Hallo {{first_name}}, Zeit für Ihre Kontrolle.', parameterCount: 1, examples: [] },
      { name: 'results_ready', language: 'de', category: 'UTILITY', status: 'APPROVED', bodyText: 'Ihre Befunde liegen vor.', parameterCount: 0, examples: [] },
    ]);
  });

  it('replaces the whole set, and keeps the old one when a page fails', async () => {
    await syncTemplates({ db: t.db, client, wabaId: WABA, now: () => 1, logger });
    sim.setTemplates([tpl('results_ready', 'APPROVED', 'Neu: Ihre Befunde.'), tpl('a', 'APPROVED', 'a'), tpl('b', 'APPROVED', 'b')]);
    sim.inject('templates', { type: 'http', status: 500 }, 1, 1);
    await expect(syncTemplates({ db: t.db, client, wabaId: WABA, now: () => 2, logger })).rejects.toMatchObject({ kind: 'retryable' });
    expect(listTemplates(t.db).map((x) => x.name)).toEqual(['appointment_reminder', 'recall', 'results_ready']);

    await syncTemplates({ db: t.db, client, wabaId: WABA, now: () => 3, logger });
    expect(listTemplates(t.db).map((x) => `${x.name}:${x.bodyText}`)).toEqual(['a:a', 'b:b', 'results_ready:Neu: Ihre Befunde.']);
  });
});
