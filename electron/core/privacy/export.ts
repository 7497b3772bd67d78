import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { zipSync, type Zippable } from 'fflate';
import { PDFDocument, StandardFonts, type PDFFont, type PDFPage } from 'pdf-lib';
import { CodedError } from '../../../shared/errors';
import { csvLine } from '../audit/export';
import { readMediaBytes } from '../db/repo/media';
import { stmt } from '../db/statements';
import type { Database } from '../db/types';
import { PATIENT_EXPORT_SCHEMA, PATIENT_EXPORT_VERSION, type PatientExport } from './exportSchema';

/**
 * A patient's access/portability export: `patient.json` (the versioned schema), `messages.csv`,
 * `conversation.pdf` (readable, files attached by name) and `media/` in one zip, written into the
 * folder the user picked under a temporary name and renamed once complete, so a half-written file
 * never carries the final name and nothing is ever written anywhere else.
 */

export type ExportPhase = 'collect' | 'json' | 'csv' | 'pdf' | 'zip' | 'write' | 'done';
export type ExportProgress = (phase: ExportPhase, fraction: number) => void;

interface MediaFile {
  path: string;
  bytes: Uint8Array;
  mimeType: string;
  filename: string;
}

export interface CollectedExport {
  data: PatientExport;
  media: MediaFile[];
}

const safeName = (s: string) => s.replace(/[^\p{L}\p{N}._-]+/gu, '_').slice(0, 80) || 'file';
const EXT: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'application/pdf': 'pdf', 'audio/ogg': 'ogg', 'video/mp4': 'mp4', 'text/plain': 'txt' };

/** Reads everything about the contact in one read transaction (one consistent snapshot). */
export function collectExport(db: Database, p: { contactId: number; exportedBy: string; now: number }): CollectedExport {
  return db.transaction((): CollectedExport => {
    const c = stmt(db, 'SELECT * FROM contacts WHERE id = ?').get(p.contactId) as
      | { id: number; wa_id: string | null; user_id: string | null; parent_user_id: string | null; username: string | null; profile_name: string | null; display_name: string | null; notes: string; created_at: number; updated_at: number }
      | undefined;
    if (!c) throw new CodedError('NOT_FOUND', `There is no contact ${p.contactId}.`);
    const media: MediaFile[] = [];
    const conversations = (stmt(db, 'SELECT * FROM conversations WHERE contact_id = ? ORDER BY id').all(c.id) as {
      id: number;
      phone_number_id: string;
      status: string;
      assigned_user_id: string | null;
      created_at: number;
      last_activity_at: number;
    }[]).map((conv) => {
      const rows = stmt(
        db,
        `SELECT m.*, x.id AS x_id, x.mime_type AS x_mime, x.filename AS x_filename, x.size AS x_size, x.sha256 AS x_sha, x.state AS x_state, (x.content IS NOT NULL OR x.file_name IS NOT NULL) AS x_has_bytes
           FROM messages m LEFT JOIN media x ON x.message_id = m.id
          WHERE m.conversation_id = ? ORDER BY m.sent_at, m.id`,
      ).all(conv.id) as {
        id: number;
        wamid: string | null;
        direction: 'inbound' | 'outbound';
        type: string;
        text: string | null;
        content_json: string;
        context_wamid: string | null;
        sent_at: number;
        received_at: number;
        status: string;
        status_at: number | null;
        error_code: number | null;
        error_title: string | null;
        author_user_id: string | null;
        x_id: number | null;
        x_mime: string | null;
        x_filename: string | null;
        x_size: number | null;
        x_sha: string | null;
        x_state: string | null;
        x_has_bytes: number | null;
      }[];
      const reactionsOf = stmt(db, `SELECT emoji, from_business, reacted_at FROM reactions WHERE target_wamid = ? AND emoji <> '' ORDER BY reacted_at`);
      const historyOf = stmt(db, 'SELECT status, status_at, error_code FROM message_statuses WHERE wamid = ? ORDER BY status_at, id');
      return {
        id: conv.id,
        phoneNumberId: conv.phone_number_id,
        status: conv.status,
        assignedTo: conv.assigned_user_id,
        createdAt: conv.created_at,
        lastActivityAt: conv.last_activity_at,
        messages: rows.map((m) => {
          let file: string | null = null;
          const bytes = m.x_id !== null && m.x_has_bytes === 1 ? readMediaBytes(db, m.x_id) : null;
          if (m.x_id !== null && bytes) {
            const name = m.x_filename ? safeName(m.x_filename) : `${m.type}.${EXT[m.x_mime ?? ''] ?? 'bin'}`;
            file = `media/${m.id}-${name}`;
            media.push({ path: file, bytes: new Uint8Array(bytes), mimeType: m.x_mime ?? 'application/octet-stream', filename: `${m.id}-${name}` });
          }
          return {
            id: m.id,
            wamid: m.wamid,
            direction: m.direction,
            type: m.type,
            text: m.text,
            content: JSON.parse(m.content_json) as unknown,
            sentAt: m.sent_at,
            receivedAt: m.received_at,
            status: m.status,
            statusAt: m.status_at,
            error: m.error_code !== null || m.error_title !== null ? { code: m.error_code, title: m.error_title } : null,
            author: m.author_user_id,
            replyToWamid: m.context_wamid,
            media: m.x_id === null ? null : { file, mimeType: m.x_mime, filename: m.x_filename, size: m.x_size, sha256: m.x_sha, state: m.x_state ?? 'pending' },
            reactions: m.wamid
              ? (reactionsOf.all(m.wamid) as { emoji: string; from_business: number; reacted_at: number }[]).map((r) => ({ emoji: r.emoji, fromClinic: r.from_business === 1, at: r.reacted_at }))
              : [],
            statusHistory: m.wamid
              ? (historyOf.all(m.wamid) as { status: string; status_at: number; error_code: number | null }[]).map((s) => ({ status: s.status, at: s.status_at, errorCode: s.error_code }))
              : [],
          };
        }),
      };
    });
    const hold = stmt(db, 'SELECT reason, set_at FROM legal_holds WHERE contact_id = ?').get(c.id) as { reason: string; set_at: number } | undefined;
    const data: PatientExport = {
      schema: PATIENT_EXPORT_SCHEMA,
      version: PATIENT_EXPORT_VERSION,
      exportedAt: p.now,
      exportedBy: p.exportedBy,
      contact: {
        id: c.id,
        waId: c.wa_id,
        businessScopedUserId: c.user_id,
        parentBusinessScopedUserId: c.parent_user_id,
        username: c.username,
        profileName: c.profile_name,
        displayName: c.display_name,
        notes: c.notes,
        createdAt: c.created_at,
        updatedAt: c.updated_at,
      },
      consent: (stmt(db, 'SELECT status, source, recorded_at, recorded_by, note FROM consent_events WHERE contact_id = ? ORDER BY id').all(c.id) as {
        status: 'unknown' | 'opted_in' | 'opted_out';
        source: string;
        recorded_at: number;
        recorded_by: string;
        note: string | null;
      }[]).map((e) => ({ status: e.status, source: e.source, at: e.recorded_at, by: e.recorded_by, note: e.note })),
      requests: (stmt(db, 'SELECT id, kind, via, received_at, due_at, done_at, outcome FROM privacy_requests WHERE contact_id = ? ORDER BY id').all(c.id) as {
        id: number;
        kind: string;
        via: string;
        received_at: number;
        due_at: number;
        done_at: number | null;
        outcome: string | null;
      }[]).map((r) => ({ id: r.id, kind: r.kind, via: r.via, receivedAt: r.received_at, dueAt: r.due_at, doneAt: r.done_at, outcome: r.outcome })),
      legalHold: hold ? { reason: hold.reason, setAt: hold.set_at } : null,
      conversations,
    };
    return { data, media };
  })();
}

const iso = (ms: number) => new Date(ms).toISOString();

export function messagesCsv(data: PatientExport): string {
  const lines = [csvLine(['conversation_id', 'message_id', 'sent_at', 'direction', 'type', 'status', 'author', 'text', 'attachment'])];
  for (const c of data.conversations) {
    for (const m of c.messages) {
      lines.push(csvLine([String(c.id), String(m.id), iso(m.sentAt), m.direction, m.type, m.status, m.author ?? '', m.text ?? '', m.media?.file ?? '']));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The PDF's standard font speaks WinAnsi only: other characters (emoji, most non-Latin scripts) print as "?"; the JSON keeps them. */
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
function printable(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\n' || (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(ch)) out += ch;
    else if (ch === '\t') out += ' ';
    else out += '?';
  }
  return out;
}

/** Text widths from per-character widths, cached per font: pdf-lib's own measure encodes the whole string each time. */
function measurer(font: PDFFont, size: number): (text: string) => number {
  const widths = new Map<string, number>();
  return (text) => {
    let w = 0;
    for (const ch of text) {
      let cw = widths.get(ch);
      if (cw === undefined) {
        cw = font.widthOfTextAtSize(ch, size);
        widths.set(ch, cw);
      }
      w += cw;
    }
    return w;
  };
}

function wrap(measure: (text: string) => number, text: string, width: number): string[] {
  const lines: string[] = [];
  const space = measure(' ');
  for (const paragraph of printable(text).split('\n')) {
    let line = '';
    let lineWidth = 0;
    for (const word of paragraph.split(' ')) {
      const w = measure(word);
      if (line && lineWidth + space + w <= width) {
        line += ` ${word}`;
        lineWidth += space + w;
        continue;
      }
      if (!line && w <= width) {
        line = word;
        lineWidth = w;
        continue;
      }
      if (line) lines.push(line);
      // A word longer than the line (a URL) is cut where it overflows.
      let rest = word;
      while (measure(rest) > width) {
        let n = rest.length - 1;
        while (n > 1 && measure(rest.slice(0, n)) > width) n = Math.floor(n * 0.9);
        lines.push(rest.slice(0, n));
        rest = rest.slice(n);
      }
      line = rest;
      lineWidth = measure(rest);
    }
    lines.push(line);
  }
  return lines;
}

/** WinAnsi codes of the characters above 0x7F that are not Latin-1 at the same code. */
const WIN_ANSI_HIGH: Record<string, number> = {
  '€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87, 'ˆ': 0x88, '‰': 0x89, 'Š': 0x8a, '‹': 0x8b, 'Œ': 0x8c, 'Ž': 0x8e,
  '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97, '˜': 0x98, '™': 0x99, 'š': 0x9a, '›': 0x9b, 'œ': 0x9c, 'ž': 0x9e, 'Ÿ': 0x9f,
};
/** A `printable` string as a PDF hex string in the standard fonts' WinAnsi encoding. */
function winAnsiHex(text: string): string {
  let hex = '<';
  for (const ch of text) hex += (WIN_ANSI_HIGH[ch] ?? ch.codePointAt(0)!).toString(16).padStart(2, '0');
  return `${hex}>`;
}

/**
 * The conversation as a readable PDF. Pages are written as raw content streams (text operators in
 * the standard fonts' WinAnsi encoding): pdf-lib's drawText builds objects per call, which for
 * 10,000 messages is most of an export's time.
 */
export async function conversationPdf(collected: CollectedExport, progress?: (fraction: number) => void): Promise<Uint8Array> {
  const { data } = collected;
  const pdf = await PDFDocument.create();
  pdf.setTitle('Conversation export');
  pdf.setCreator('Clinic Inbox');
  pdf.setCreationDate(new Date(data.exportedAt));
  pdf.setModificationDate(new Date(data.exportedAt));
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  const bold = await pdf.embedFont(StandardFonts.HelveticaBold);
  const measure10 = measurer(font, 10);
  const [W, H, M] = [595.28, 841.89, 50];
  const width = W - 2 * M;
  let page: PDFPage | null = null;
  let names = new Map<PDFFont, string>();
  let ops: string[] = [];
  let y = 0;
  const flush = () => {
    if (page && ops.length > 0) page.node.addContentStream(pdf.context.register(pdf.context.flateStream(ops.join('\n'))));
    ops = [];
  };
  const newPage = () => {
    flush();
    page = pdf.addPage([W, H]);
    names = new Map([
      [font, page.node.newFontDictionary('F', font.ref).toString()],
      [bold, page.node.newFontDictionary('B', bold.ref).toString()],
    ]);
    y = H - M;
  };
  type Color = readonly [number, number, number];
  const line = (text: string, f: PDFFont, size: number, color: Color = [0, 0, 0], indent = 0) => {
    if (!page || y < M + size) newPage();
    ops.push(`BT ${names.get(f)!} ${size} Tf ${color.join(' ')} rg ${(M + indent).toFixed(2)} ${(y - size).toFixed(2)} Td ${winAnsiHex(text)} Tj ET`);
    y -= size * 1.35;
  };
  const grey: Color = [0.3, 0.3, 0.3];
  const name = data.contact.displayName ?? data.contact.profileName ?? data.contact.username ?? `Contact ${data.contact.id}`;
  line(printable(`WhatsApp conversation with ${name}`), bold, 16);
  line(printable(`Number: ${data.contact.waId ?? '-'}    Exported: ${iso(data.exportedAt).slice(0, 16).replace('T', ' ')} UTC`), font, 9, grey);
  line(`Files are attached to this PDF by name and are also in the zip's media folder.`, font, 9, grey);
  y -= 8;
  const total = data.conversations.reduce((n, c) => n + c.messages.length, 0) || 1;
  let done = 0;
  for (const c of data.conversations) {
    for (const m of c.messages) {
      const who = m.direction === 'inbound' ? name : `Clinic${m.author ? ` (${m.author})` : ''}`;
      y -= 4;
      line(printable(`${iso(m.sentAt).slice(0, 16).replace('T', ' ')}  ${who}  ·  ${m.type}${m.direction === 'outbound' ? `  ·  ${m.status}` : ''}`), bold, 8.5, [0.25, 0.25, 0.4]);
      const body = m.text ?? (m.media ? '' : `[${m.type}]`);
      if (body) for (const l of wrap(measure10, body, width - 10)) line(l, font, 10, [0, 0, 0], 10);
      if (m.media) line(printable(m.media.file ? `Attachment: ${m.media.file.slice('media/'.length)}` : `[file not stored: ${m.media.state}]`), font, 9, [0.2, 0.4, 0.2], 10);
      done += 1;
      if (done % 500 === 0) progress?.(done / total);
    }
  }
  flush();
  for (const f of collected.media) await pdf.attach(f.bytes, f.filename, { mimeType: f.mimeType, description: 'Sent in the conversation', creationDate: new Date(data.exportedAt), modificationDate: new Date(data.exportedAt) });
  return pdf.save({ useObjectStreams: true });
}

const yield_ = () => new Promise<void>((r) => setImmediate(r));

/** Builds the zip and writes it into `destinationDir` (which must exist); returns where and how big. */
export async function writePatientExport(
  db: Database,
  p: { contactId: number; destinationDir: string; exportedBy: string; now: number; progress?: ExportProgress },
): Promise<{ path: string; bytes: number; counts: { messages: number; media: number; conversations: number } }> {
  const progress = p.progress ?? (() => {});
  if (!isAbsolute(p.destinationDir)) throw new CodedError('VALIDATION_FAILED', 'Choose the folder to save the export in (a full path).');
  let isDir = false;
  try {
    isDir = statSync(p.destinationDir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new CodedError('NOT_FOUND', 'That folder does not exist (or is not a folder). Choose another one.');
  progress('collect', 0);
  const collected = collectExport(db, p);
  const { data } = collected;
  await yield_();
  progress('json', 0.2);
  const json = JSON.stringify(data, null, 2);
  progress('csv', 0.3);
  const csv = messagesCsv(data);
  await yield_();
  progress('pdf', 0.35);
  const pdf = await conversationPdf(collected, (f) => progress('pdf', 0.35 + f * 0.45));
  progress('zip', 0.85);
  const enc = new TextEncoder();
  const files: Zippable = {
    'patient.json': enc.encode(json),
    'messages.csv': enc.encode(csv),
    'conversation.pdf': [pdf, { level: 0 }],
    'README.txt': enc.encode(
      `Export of everything Clinic Inbox holds about one patient.\r\npatient.json: ${PATIENT_EXPORT_SCHEMA} version ${PATIENT_EXPORT_VERSION} (all data, machine-readable)\r\nmessages.csv: one line per message\r\nconversation.pdf: the conversation to read or print\r\nmedia/: the files sent and received\r\n`,
    ),
  };
  for (const m of collected.media) files[m.path] = [m.bytes, { level: 0 }];
  const zip = zipSync(files, { level: 6, mtime: new Date(data.exportedAt) });
  await yield_();
  progress('write', 0.95);
  const stamp = iso(p.now).slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  const finalPath = join(p.destinationDir, `patient-${p.contactId}-${stamp}.zip`);
  const tmpPath = join(p.destinationDir, `.patient-${p.contactId}-${randomBytes(6).toString('hex')}.partial`);
  try {
    const fd = openSync(tmpPath, 'wx', 0o600);
    try {
      writeSync(fd, zip);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmpPath, finalPath);
  } catch (err) {
    rmSync(tmpPath, { force: true });
    const code = (err as { code?: string }).code;
    throw new CodedError(code === 'EACCES' || code === 'EPERM' ? 'FORBIDDEN' : 'UNAVAILABLE', `The export could not be written to that folder (${code ?? 'error'}). Choose another folder.`);
  }
  progress('done', 1);
  const messages = data.conversations.reduce((n, c) => n + c.messages.length, 0);
  return { path: finalPath, bytes: zip.length, counts: { messages, media: collected.media.length, conversations: data.conversations.length } };
}
