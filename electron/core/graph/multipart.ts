import { randomBytes } from 'node:crypto';

/** A `multipart/form-data` body with one file, in three parts: the fields and the file's header, the file itself, the closing line. */
export interface MultipartBody {
  parts: [Uint8Array, Uint8Array, Uint8Array];
  /** Bytes in all three: sent as the Content-Length. */
  length: number;
  contentType: string;
}

/**
 * A `multipart/form-data` body with one file, the file's bytes not copied. `fetch` with a
 * `FormData` copies a file three times on its way out and sends it chunked in small writes; one
 * `Buffer` of the whole body still cost two copies of the file (building it, and undici's copy of
 * a buffer body, as Fetch's "copy of the bytes held by object" asks): 15 ms of the event loop's CPU
 * per 5 MB image here, before the upload's first byte left. The caller sends the three parts as a
 * stream with this length (`client.ts`), so the file goes out from the caller's own memory (for a
 * file being sent, the shared memory the writer thread stores it from) in one write.
 */
export function multipartBody(fields: Record<string, string>, file: { name: string; filename: string; type: string; bytes: Uint8Array }): MultipartBody {
  // As FormData makes it: random, so no file realistically contains it.
  const boundary = `----clinic-inbox-${randomBytes(16).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${value.replace(/\r?\n|\r/g, '\r\n')}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="${escape(file.name)}"; filename="${escape(file.filename)}"\r\nContent-Type: ${file.type.replace(/[\r\n]/g, '')}\r\n\r\n`;
  const parts: MultipartBody['parts'] = [Buffer.from(head, 'utf8'), file.bytes, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')];
  return { parts, length: parts[0].byteLength + parts[1].byteLength + parts[2].byteLength, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** What the HTML standard escapes in a part's name and filename, so a filename cannot break out of its header. */
function escape(value: string): string {
  return value.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
}
