import { randomBytes } from 'node:crypto';

/**
 * A `multipart/form-data` body with one file, as one buffer. `fetch` with a `FormData` copies a
 * file three times on its way out (into the Blob, then chunk by chunk through the Blob's stream
 * into undici's multipart stream) and sends it chunked in small writes; for a 5 MB image that was
 * most of the client's share of the upload, on the event loop that the send waits on. Here the
 * file is copied once and goes out with a Content-Length in one write.
 */
export function multipartBody(fields: Record<string, string>, file: { name: string; filename: string; type: string; bytes: Uint8Array }): { body: Buffer; contentType: string } {
  // As FormData makes it: random, so no file realistically contains it.
  const boundary = `----clinic-inbox-${randomBytes(16).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"\r\n\r\n${value.replace(/\r?\n|\r/g, '\r\n')}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="${escape(file.name)}"; filename="${escape(file.filename)}"\r\nContent-Type: ${file.type.replace(/[\r\n]/g, '')}\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head, 'utf8'), file.bytes, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** What the HTML standard escapes in a part's name and filename, so a filename cannot break out of its header. */
function escape(value: string): string {
  return value.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
}
