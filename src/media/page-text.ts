import { charsetOf, decodeHtml, decodeText } from './charset.js';
import { htmlToText } from './html-text.js';
import { mimeOf, safeFetch, type SafeFetchOptions } from './safe-fetch.js';
import { capChars, collapseWhitespace } from './text-cap.js';

/** Default page cap, bytes (1 MiB: far above an article's HTML, far below a video). */
export const PAGE_MAX_BYTES = 1024 * 1024;
/** Default page deadline, ms: the customer is waiting for an answer. */
export const PAGE_TIMEOUT_MS = 5_000;
/** Default text cap, characters (UTF-16 code units): what we are willing to spend of the LLM's context. */
export const PAGE_MAX_CHARS = 4_000;

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);

/** What a page is about, ready for a prompt. */
export interface PageSummary {
  /** og:title or `<title>`; null for plain text or a page without one */
  title: string | null;
  /** readable text, whitespace collapsed, at most `maxChars` characters (may be '' for script-only pages) */
  text: string;
  /** whether `text` was cut at `maxChars` */
  truncated: boolean;
  /** the URL after redirects; may hold a query string with tokens, so do not log it */
  finalUrl: string;
}

/** What fetchPageSummary needs; all optional. */
export interface PageTextDeps {
  /** allowList/resolver/transport/maxRedirects for safeFetch (its caps and `accept` are set here) */
  fetchOptions?: Omit<SafeFetchOptions, 'maxBytes' | 'timeoutMs' | 'accept'>;
  /** bytes, default {@link PAGE_MAX_BYTES} */
  maxBytes?: number;
  /** ms for the whole fetch, default {@link PAGE_TIMEOUT_MS} */
  timeoutMs?: number;
  /** characters of text kept, default {@link PAGE_MAX_CHARS} */
  maxChars?: number;
  signal?: AbortSignal;
  /** the fetch function (default safeFetch); injectable for callers that wrap it with metrics */
  fetch?: typeof safeFetch;
}

/**
 * Fetches a web page a customer linked and returns its title and readable text: HTML (any declared charset, GBK
 * and GB18030 included) is reduced to its main content without scripts, styles and navigation; `text/plain` passes
 * through; a response without a Content-Type is treated as HTML when it starts with `<`, else as text.
 * @param url an http(s) URL
 * @throws FetchRefusedError from safeFetch — including `content_type` for anything that is not HTML or plain text
 *   (PDF, image, video…) and `too_large` past `maxBytes`; every reason means "could not read the page"
 */
export async function fetchPageSummary(url: string, deps: PageTextDeps = {}): Promise<PageSummary> {
  const res = await (deps.fetch ?? safeFetch)(
    url,
    {
      ...deps.fetchOptions,
      headers: { accept: 'text/html,application/xhtml+xml,text/plain;q=0.8', ...deps.fetchOptions?.headers },
      maxBytes: deps.maxBytes ?? PAGE_MAX_BYTES,
      timeoutMs: deps.timeoutMs ?? PAGE_TIMEOUT_MS,
      accept: (type) => type === null || type === 'text/plain' || HTML_TYPES.has(type),
    },
    deps.signal,
  );
  const type = mimeOf(res.contentType);
  const isHtml = type === null ? /^\s*</.test(res.body.subarray(0, 512).toString('latin1')) : HTML_TYPES.has(type);
  const extracted = isHtml
    ? htmlToText(decodeHtml(res.body, res.contentType))
    : { title: null, text: collapseWhitespace(decodeText(res.body, charsetOf(res.contentType))) };
  const capped = capChars(extracted.text, deps.maxChars ?? PAGE_MAX_CHARS);
  return { title: extracted.title, text: capped.text, truncated: capped.truncated, finalUrl: res.finalUrl };
}
