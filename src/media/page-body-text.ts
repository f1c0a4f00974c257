import { charsetOf, decodeHtml, decodeText } from './charset.js';
import { htmlToText } from './html-text.js';
import { mimeOf } from './safe-fetch.js';
import { capChars, collapseWhitespace } from './text-cap.js';

/** Content types read as HTML; `text/plain` is read as text; anything else is refused before the body is read. */
export const HTML_TYPES: ReadonlySet<string> = new Set(['text/html', 'application/xhtml+xml']);

/** The text of a fetched page, capped. */
export interface PageText {
  /** og:title or `<title>`; null for plain text or a page without one */
  title: string | null;
  /** readable text, whitespace collapsed, at most `maxChars` characters (may be '' for script-only pages) */
  text: string;
  /** whether `text` was cut at `maxChars` */
  truncated: boolean;
}

/**
 * A fetched page body → title and text: HTML (any declared charset, GBK and GB18030 included) is reduced to its
 * main content without scripts, styles and navigation; `text/plain` passes through, whitespace collapsed; a body
 * without a Content-Type is HTML when it starts with `<`, else text. CPU-bound (decoding and html-to-text): the
 * extraction pool runs it, not the event loop. Never throws on hostile markup.
 * @param body the response body as fetched (at most the page cap, 1 MiB by default)
 * @param contentType the response's Content-Type header, or null
 * @param maxChars characters (UTF-16 code units) of text kept
 */
export function pageBodyToText(body: Buffer, contentType: string | null, maxChars: number): PageText {
  const type = mimeOf(contentType);
  const isHtml = type === null ? /^\s*</.test(body.subarray(0, 512).toString('latin1')) : HTML_TYPES.has(type);
  const extracted = isHtml
    ? htmlToText(decodeHtml(body, contentType))
    : { title: null, text: collapseWhitespace(decodeText(body, charsetOf(contentType))) };
  const capped = capChars(extracted.text, maxChars);
  return { title: extracted.title, text: capped.text, truncated: capped.truncated };
}
