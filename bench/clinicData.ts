// The generated clinic the data benchmarks share: CONTACTS patients, MESSAGES messages with
// heavy-tailed thread lengths over two years, synthetic German/English text with a long tail of
// rare words (no patient data). Deterministic: the same sizes give the same rows.
import { withBulkIndexing } from '../electron/core/db/searchShards';
import type { Database } from '../electron/core/db/types';
import { prng } from './stats';

const WORDS = (
  'termin rezept befund praxis ärztin arzt überweisung impfung blutabnahme röntgen knie rücken schmerzen fieber husten ' +
  'müller schröder weiß größe öffnungszeiten verschieben absagen bestätigen morgen heute donnerstag freitag montag ' +
  'bitte danke hallo guten tag abend vormittag nachmittag krankschreibung attest labor ergebnis kontrolle physiotherapie ' +
  'ibuprofen paracetamol allergie tabletten salbe dosis apotheke versicherung karte adresse telefon rückruf frage ' +
  'appointment prescription results tomorrow cancel confirm thanks please doctor nurse clinic pain fever café résumé naïve'
).split(' ');
// A long tail of rarer words, as real text has.
for (let i = 0; i < 3000; i += 1) WORDS.push(`wort${i.toString(36)}`);

export function sentence(rand: () => number): string {
  const n = 3 + Math.floor(rand() * 18);
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    // Skew towards the common words at the front of the list.
    const idx = Math.floor(Math.pow(rand(), 3) * WORDS.length);
    out.push(WORDS[idx]!);
  }
  const s = out.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1) + (rand() < 0.3 ? '?' : '.');
}

/** Writes the generated clinic into an empty, migrated database (same rows for the same sizes). */
export function fillClinic(db: Database, MESSAGES: number, CONTACTS: number): void {
  const rand = prng(42);
  const t0 = 1_700_000_000_000;
  const span = 2 * 365 * 86_400_000;
  // Each conversation row is written after its messages (it points at the last one).
  db.pragma('foreign_keys = OFF');
  const insContact = db.prepare('INSERT INTO contacts (id, wa_id, profile_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
  const insConv = db.prepare(
    `INSERT INTO conversations (id, contact_id, phone_number_id, status, assigned_user_id, unread_count, last_activity_at, last_inbound_at, last_message_id, created_at, updated_at)
     VALUES (?, ?, '110000000000001', ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insMsg = db.prepare(
    `INSERT INTO messages (id, conversation_id, wamid, direction, type, text, content_json, sent_at, received_at, status)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // Heavy-tailed thread lengths: most conversations short, a few very long.
  const weights = Array.from({ length: CONTACTS }, () => 1 / Math.pow(1 - rand() * 0.999, 0.8));
  const total = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => Math.max(1, Math.floor((w / total) * MESSAGES)));
  let extra = MESSAGES - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; extra > 0; i = (i + 1) % CONTACTS, extra -= 1) counts[i]! += 1;
  let messageId = 0;
  // The per-row index inserts are skipped for the bulk load; each shard is built once at the end.
  withBulkIndexing(db, () => db.transaction(() => {
    for (let c = 1; c <= CONTACTS; c += 1) {
      insContact.run(c, `49151${String(c).padStart(8, '0')}`, `Patient ${c}`, t0, t0);
      const n = counts[c - 1]!;
      const end = t0 + Math.floor(rand() * span);
      const start = end - Math.floor(rand() * span * 0.5);
      const step = Math.max(1, Math.floor((end - start) / n));
      let lastInbound = 0;
      for (let k = 0; k < n; k += 1) {
        messageId += 1;
        const at = start + k * step;
        const inbound = rand() < 0.55;
        if (inbound) lastInbound = at;
        const image = rand() < 0.08;
        const text = image && rand() < 0.5 ? null : sentence(rand);
        const content = image
          ? { id: `wamid.B${messageId}`, type: 'image', image: { id: String(9e14 + messageId), mime_type: 'image/jpeg', sha256: 'x', caption: text } }
          : { id: `wamid.B${messageId}`, type: 'text', text: { body: text } };
        insMsg.run(messageId, c, `wamid.B${messageId}`, inbound ? 'inbound' : 'outbound', image ? 'image' : 'text', text, JSON.stringify(content), at, at + 500, inbound ? 'received' : 'read');
      }
      const r = rand();
      insConv.run(c, c, r < 0.2 ? 'resolved' : r < 0.3 ? 'pending' : 'open', rand() < 0.3 ? `user-${1 + Math.floor(rand() * 8)}` : null, rand() < 0.05 ? 1 + Math.floor(rand() * 5) : 0, start + (n - 1) * step, lastInbound || null, messageId, t0, t0);
    }
  })());
  db.pragma('foreign_keys = ON');
  if ((db.pragma('foreign_key_check') as unknown[]).length > 0) throw new Error('generated clinic breaks a foreign key');
  db.exec('ANALYZE');
}

