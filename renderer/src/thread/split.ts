/** WhatsApp's limit for one text message, counted in characters (code points). */
export const TEXT_LIMIT = 4096;

/**
 * Cuts a long text into messages of at most `limit` characters, at the last paragraph, line or
 * word break before the limit where there is one. Joining the parts gives back the text exactly:
 * the break characters stay at the end of the part before them, nothing is dropped or added.
 */
export function splitMessage(text: string, limit = TEXT_LIMIT): string[] {
  const chars = [...text];
  const parts: string[] = [];
  let start = 0;
  while (chars.length - start > limit) {
    const window = chars.slice(start, start + limit).join('');
    const cut = Math.max(window.lastIndexOf('\n\n'), window.lastIndexOf('\n'), window.lastIndexOf(' '));
    // A break in the first half would leave a tiny part; cut hard at the limit instead.
    const take = cut > window.length / 2 ? [...window.slice(0, cut + 1)].length : limit;
    parts.push(chars.slice(start, start + take).join(''));
    start += take;
  }
  parts.push(chars.slice(start).join(''));
  return parts;
}
