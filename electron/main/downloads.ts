/**
 * Downloads and inline content, decided here and wired in `index.ts`. A patient's file is saved
 * only where the user chose in the save dialog (never into a folder on its own), under a cleaned
 * name, and never opened by the app. Only pictures, sound, video and documents show inline; any
 * other type (HTML, SVG, scripts, archives) is a named download.
 */

const INLINE_EXACT = new Set(['application/pdf', 'text/plain']);
const INLINE_PREFIX = ['image/', 'audio/', 'video/'];
/** Image types that can carry script or are not pictures to a browser. */
const NOT_INLINE = new Set(['image/svg+xml', 'image/svg', 'image/x-icon']);

export function isInlineMimeType(mime: string | null | undefined): boolean {
  const type = (mime ?? '').split(';')[0]!.trim().toLowerCase();
  if (NOT_INLINE.has(type)) return false;
  return INLINE_EXACT.has(type) || INLINE_PREFIX.some((p) => type.startsWith(p) && type.length > p.length);
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;

/**
 * A file name safe on every OS: no folders, no control or reserved characters, no leading dots
 * (hidden files), no trailing dots or spaces, not a Windows device name, at most 120 characters
 * with the extension kept.
 */
export function cleanDownloadName(name: string, fallback = 'download'): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  let clean = base
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f-\u009f<>:"|?*\u202a-\u202e\u2066-\u2069]/g, '_')
    .replace(/^[.\s]+/, '')
    .replace(/[.\s]+$/, '');
  if (clean === '' || WINDOWS_RESERVED.test(clean)) clean = clean === '' ? fallback : `_${clean}`;
  if (clean.length > 120) {
    const dot = clean.lastIndexOf('.');
    const ext = dot > 0 && clean.length - dot <= 10 ? clean.slice(dot) : '';
    clean = clean.slice(0, 120 - ext.length) + ext;
  }
  return clean;
}

export interface DownloadPlan {
  /** Suggested in the save dialog; the user picks the folder and may change the name. */
  defaultName: string;
  /** Always true: there is no path where a download is saved without asking. */
  askWhere: true;
  /** Always false: the app never opens what it saved. */
  openAfterwards: false;
}

export function planDownload(input: { suggestedName: string; url: string }): DownloadPlan {
  let fallback = 'download';
  try {
    const url = new URL(input.url);
    if (url.protocol === 'https:' || url.protocol === 'http:' || url.protocol === 'app:') fallback = cleanDownloadName(decodeURIComponent(url.pathname.split('/').pop() ?? ''), 'download');
  } catch {
    // a blob: or data: URL has no useful name
  }
  return { defaultName: cleanDownloadName(input.suggestedName, fallback), askWhere: true, openAfterwards: false };
}

/** Response headers for content of `mime`: anything that may not show inline becomes an attachment. */
export function withDisposition(headers: Record<string, string[]>, mime: string | null): Record<string, string[]> {
  if (isInlineMimeType(mime) || mime === null) return headers;
  const out = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-disposition'));
  return { ...out, 'Content-Disposition': ['attachment'] };
}
