// The auditor's desk as a command: `npm run audit -- …` (see USAGE). verify-export needs neither a
// keychain nor a database: it checks an exported file on any computer. The other commands open the
// core of --data-dir and act through its console as a named local operator (roles admin+auditor).
// Never prints message text: entries hold ids, names and what was done, nothing a patient wrote.
import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { AuditEntryView, AuditFilter, RpcOutput } from '../../../shared/rpc';
import { AuditActionSchema } from '../../../shared/rpc';
import { createCore, type CoreHandle } from '../createCore';
import { auditCsv } from './export';
import { verifyExport } from './exportVerify';

const USAGE = `Usage: npm run audit -- verify-export FILE
       npm run audit -- --data-dir DIR query [filters] [--format csv|json]
       npm run audit -- --data-dir DIR export --out FILE [filters]
       npm run audit -- --data-dir DIR verify

  verify-export FILE  check an exported proof on any computer: every entry, the chain through the
                      signed checkpoint, the device key's signature. Exit 0 intact, 3 not intact
  query               the entries the filters select, newest first (CSV by default)
  export --out FILE   writes the JSON proof to FILE and the same entries as CSV to FILE.csv
  verify              check the whole local chain (and, when paired, the relay's witness)

  filters: --user ID  --session ID  --patient CONTACT_ID  --action ACTION  --from ISO  --to ISO
           (--to is exclusive)

Exit codes: 0 fine, 2 usage, 3 the log or the file is not intact, 1 anything else.`;

class UsageError extends Error {}

function parse() {
  return parseArgs({
    allowPositionals: true,
    strict: true,
    options: {
      'data-dir': { type: 'string' },
      user: { type: 'string' },
      session: { type: 'string' },
      patient: { type: 'string' },
      action: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
type Values = ReturnType<typeof parse>['values'];

function time(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`--${name} needs a date and time like 2025-03-01T08:00:00Z, not "${text.slice(0, 40)}"`);
  return ms;
}

function filterFrom(v: Values): AuditFilter {
  const filter: AuditFilter = {};
  if (v.user) filter.userId = v.user;
  if (v.session) filter.sessionId = v.session;
  if (v.patient !== undefined) {
    const id = Number(v.patient);
    if (!Number.isInteger(id) || id <= 0) throw new UsageError('--patient needs a contact id (a whole number; find it on the auditor screen)');
    filter.contactId = id;
  }
  if (v.action !== undefined) {
    const action = AuditActionSchema.safeParse(v.action);
    if (!action.success) throw new UsageError(`--action must be one of ${AuditActionSchema.options.join(', ')}`);
    filter.action = action.data;
  }
  const from = time('from', v.from);
  const to = time('to', v.to);
  if (from !== undefined) filter.from = from;
  if (to !== undefined) filter.to = to;
  return filter;
}

function out(text: string): void {
  process.stdout.write(text);
}

function verifyExportCommand(file: string | undefined): number {
  if (!file) throw new UsageError('verify-export needs the exported FILE');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
  const verdict = verifyExport(text);
  if (verdict.ok) {
    out(`INTACT: ${verdict.entries} entries, and the whole chain up to entry ${verdict.checkpoint?.seq ?? 0}, match the checkpoint signed by the device key.\n`);
    if (verdict.checkpoint) out(`  checkpoint: entry ${verdict.checkpoint.seq}, signed ${new Date(verdict.checkpoint.at).toISOString()}\n`);
    const w = verdict.witness;
    out(`  relay witness at export: ${w?.ok === true ? `confirmed (entry ${w.witnessedSeq ?? '-'})` : w?.ok === false ? `DISAGREED: ${w.reason ?? ''}` : `not asked or unreachable (${w?.reason ?? 'no answer'})`}\n`);
  } else {
    out(`NOT INTACT: ${verdict.reason}\n`);
  }
  if (verdict.fingerprint) out(`  device key fingerprint (SHA-256; compare with the relay operator's record): ${verdict.fingerprint}\n`);
  return verdict.ok ? 0 : 3;
}

/** The relay's witness needs the link up: give it a moment when this appliance is paired. */
async function settleLink(core: CoreHandle): Promise<void> {
  if (core.relayStatus().state === 'not_paired') return;
  const deadline = Date.now() + 5_000;
  while (core.relayStatus().state !== 'connected' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

async function withCore(v: Values, run: (call: ReturnType<CoreHandle['console']>, core: CoreHandle) => Promise<number>): Promise<number> {
  if (!v['data-dir']) throw new UsageError('this command needs --data-dir DIR');
  const core = await createCore({ dataDir: v['data-dir'], logger: pino({ level: v['log-level'] ?? 'warn', base: { part: 'audit-cli' } }, pino.destination(2)) });
  try {
    return await run(core.console(userInfo().username), core);
  } finally {
    await core.close();
  }
}

function failed(error: { code: string; message: string }): number {
  process.stderr.write(`audit: ${error.code}: ${error.message}\n`);
  return error.code === 'VALIDATION_FAILED' || error.code === 'BAD_REQUEST' ? 2 : 1;
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  switch (command) {
    case 'verify-export':
      return verifyExportCommand(rest[0]);
    case 'query': {
      const format = v.format ?? 'csv';
      if (format !== 'csv' && format !== 'json') throw new UsageError('--format is csv or json');
      const filter = filterFrom(v);
      return withCore(v, async (call) => {
        const items: AuditEntryView[] = [];
        let cursor: string | null = null;
        do {
          const result = await call('audit.query', { filter, limit: 200, ...(cursor ? { cursor } : {}) });
          if (!result.ok) return failed(result.error);
          const page = result.value as RpcOutput<'audit.query'>;
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        if (format === 'json') out(`${JSON.stringify(items, null, 1)}\n`);
        else out(auditCsv(items));
        return 0;
      });
    }
    case 'export': {
      if (!v.out) throw new UsageError('export needs --out FILE');
      const file = v.out;
      const filter = filterFrom(v);
      return withCore(v, async (call, core) => {
        await settleLink(core);
        const result = await call('audit.export', { filter });
        if (!result.ok) return failed(result.error);
        const files = result.value as RpcOutput<'audit.export'>;
        writeFileSync(file, files.json, { mode: 0o600 });
        writeFileSync(`${file}.csv`, files.csv, { mode: 0o600 });
        out(`Exported ${files.entries} entries with their proof to ${file} and ${file}.csv (suggested name ${files.fileBaseName}).\n`);
        out(`Check it on any computer: npm run audit -- verify-export ${file}\n`);
        return 0;
      });
    }
    case 'verify':
      return withCore(v, async (call, core) => {
        await settleLink(core);
        const result = await call('audit.verify', { withRelayWitness: core.relayStatus().state === 'connected' });
        if (!result.ok) return failed(result.error);
        const verdict = result.value as RpcOutput<'audit.verify'>;
        out(`${JSON.stringify(verdict, null, 2)}\n`);
        return verdict.chain.ok && verdict.witness.ok !== false ? 0 : 3;
      });
    default:
      throw new UsageError(command ? `unknown command "${command.slice(0, 40)}"` : 'which command?');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`audit: ${err.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`audit: ${err instanceof Error && 'code' in err ? `${String((err as { code: unknown }).code)}: ${err.message}` : 'failed (see the log)'}\n`);
    process.exit(1);
  },
);
