import type { KeyObject } from 'node:crypto';
import type { AuditEntryView, AuditFilter } from '../../../shared/rpc';
import type { Database } from '../db/types';
import { readAnchor } from './anchor';
import { AUDIT_COLUMNS, makeCheckpoint, rawEntryDigest, rowFromRaw, type AuditRawRow } from './auditLog';
import { EXPORT_FORMAT, type AuditExport } from './exportVerify';
import { allFiltered, contactIdsOf, contactNames, toViews } from './reports';

export interface ExportDeps {
  installationId: string;
  /** The relay's id for this appliance, or null when never paired (the signature then binds the installation id). */
  applianceId: string | null;
  signing: { privateKey: KeyObject; publicKeyRaw: string };
  witness: AuditExport['witness'];
  at: number;
}

export interface AuditExportFiles {
  fileBaseName: string;
  json: string;
  csv: string;
  entries: number;
}

/**
 * A filtered view as CSV and as a JSON proof (see exportVerify.ts). Synchronous: the entries, the
 * chain and the signed checkpoint all come from one consistent state of the log.
 */
export function buildAuditExport(db: Database, filter: AuditFilter, deps: ExportDeps): AuditExportFiles {
  return db.transaction(() => {
    const signedFor = deps.applianceId ?? deps.installationId;
    const signed = makeCheckpoint(db, signedFor, deps.signing.privateKey, deps.at);
    const headSeq = signed?.checkpoint.seq ?? 0;
    // A pruned log is proven from its anchor on: the entries behind it are gone (or going, batch by batch).
    const anchor = readAnchor(db);
    const after = anchor?.throughSeq ?? 0;
    const chosen = [...allFiltered(db, filter)].filter((r) => r.seq > after && r.seq <= headSeq).reverse();
    const included = new Set(chosen.map((r) => r.seq));

    const chain: AuditExport['chain'] = [];
    const rows = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > ? AND seq <= ? ORDER BY seq`).raw().iterate(after, headSeq) as IterableIterator<AuditRawRow>;
    for (const raw of rows) {
      if (included.has(raw[0])) continue;
      // Version-1 entries were hashed over their fields directly: only the whole row links them.
      // The pruning's entry goes whole too: the verifier reads the anchor it states.
      if (raw[13] === 2 && raw[0] !== anchor?.recordSeq) chain.push([raw[0], rawEntryDigest(raw)]);
      else chain.push({ ...rowFromRaw(raw), hash_version: raw[13] === 2 ? 2 : 1 });
    }

    const names = contactNames(db, chosen.flatMap((r) => contactIdsOf(r)));
    const proof: AuditExport = {
      format: EXPORT_FORMAT,
      installationId: deps.installationId,
      applianceId: deps.applianceId,
      exportedAt: deps.at,
      filter: { ...filter },
      signingPublicKey: deps.signing.publicKeyRaw,
      entries: chosen.map((r) => ({ ...r, hash_version: r.hash_version === 1 ? 1 : 2 })),
      chain,
      checkpoint: signed ? { signedFor, ...signed.checkpoint, signature: signed.signature } : null,
      anchor: anchor ? { throughSeq: anchor.throughSeq, throughHash: anchor.throughHash, recordSeq: anchor.recordSeq } : null,
      witness: deps.witness,
      contactNames: Object.fromEntries([...names].map(([id, name]) => [String(id), name])),
    };
    return {
      fileBaseName: `audit-${deps.installationId}-${stamp(deps.at)}`,
      json: `${JSON.stringify(proof, null, 1)}\n`,
      csv: auditCsv(toViews(db, chosen)),
      entries: chosen.length,
    };
  })();
}

function stamp(at: number): string {
  const d = new Date(at);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

const CSV_HEADER = ['seq', 'time_utc', 'user_id', 'display_name', 'roles', 'session_id', 'action', 'method', 'patient_ids', 'patient_names', 'origin', 'outcome', 'error_code', 'reason'];

/** One row per entry, in the order given, after a header row. */
export function auditCsv(entries: readonly AuditEntryView[]): string {
  const lines = [csvLine(CSV_HEADER)];
  for (const e of entries) {
    lines.push(
      csvLine([
        String(e.seq),
        new Date(e.at).toISOString(),
        e.userId,
        e.displayName ?? '',
        e.roles.join('+'),
        e.sessionId ?? '',
        e.action,
        e.method,
        e.contacts.map((c) => c.id).join(' '),
        e.contacts.map((c) => c.name ?? '').join('; '),
        e.origin,
        e.outcome,
        e.errorCode ?? '',
        e.reason ?? '',
      ]),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * RFC 4180: a cell with a comma, quote or line break is quoted, quotes doubled. A cell that a
 * spreadsheet would run as a formula (= + - @, or a leading tab or carriage return) gets a ' first.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(cells: readonly string[]): string {
  return cells.map(csvCell).join(',');
}
