/**
 * What the WhatsApp Cloud API accepts per media type, from Meta's "Supported media types" table.
 * The same table bounds uploads before they leave, and inbound downloads before they are stored,
 * so a 2 GB "image" never reaches the database.
 */
export const MEDIA_KINDS = ['image', 'audio', 'video', 'document', 'sticker'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

const MB = 1024 * 1024;
const KB = 1024;

export const MEDIA_MAX_BYTES: Record<MediaKind, number> = {
  image: 5 * MB,
  audio: 16 * MB,
  video: 16 * MB,
  document: 100 * MB,
  // Meta: static stickers 100 KB, animated 500 KB. An animated WebP is only known after parsing,
  // so the larger bound applies here and the smaller one is Meta's to enforce on upload.
  sticker: 500 * KB,
};

export const MEDIA_MIME_TYPES: Record<MediaKind, readonly string[]> = {
  image: ['image/jpeg', 'image/png'],
  audio: ['audio/aac', 'audio/amr', 'audio/mpeg', 'audio/mp4', 'audio/ogg'],
  video: ['video/mp4', 'video/3gpp'],
  document: [
    'text/plain',
    'application/pdf',
    'application/msword',
    'application/vnd.ms-excel',
    'application/vnd.ms-powerpoint',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  ],
  sticker: ['image/webp'],
};

/** The bare type of a MIME header value: `audio/ogg; codecs=opus` → `audio/ogg`. */
export function baseMimeType(mime: string): string {
  return (mime.split(';')[0] ?? '').trim().toLowerCase();
}

/** Which kind an upload of this MIME type is sent as; null when WhatsApp does not take it. */
export function mediaKindForMime(mime: string): MediaKind | null {
  const base = baseMimeType(mime);
  for (const kind of MEDIA_KINDS) {
    if (MEDIA_MIME_TYPES[kind].includes(base)) return kind;
  }
  return null;
}

export function maxBytesFor(kind: MediaKind): number {
  return MEDIA_MAX_BYTES[kind];
}
