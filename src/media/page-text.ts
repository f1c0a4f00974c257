import { HTML_TYPES, type PageText } from './page-body-text.js';
import { safeFetch, type SafeFetchOptions } from './safe-fetch.js';

/** Default page cap, bytes (1 MiB: far above an article's HTML, far below a video). */
export const PAGE_MAX_BYTES = 1024 * 1024;
/** Default page deadline, ms: the customer is waiting for an answer. */
export const PAGE_TIMEOUT_MS = 5_000;
/** Default text cap, characters (UTF-16 code units): what we are willing to spend of the LLM's context. */
export const PAGE_MAX_CHARS = 4_000;

/** What a page is about, ready for a prompt. */
export interface PageSummary extends PageText {
  /** the URL after redirects; may hold a query string with tokens, so do not log it */
  finalUrl: string;
}

/**
 * Turns a fetched body into text off the event loop: the extraction pool's `page` (tests may pass their own pool).
 * @throws ExtractionError when the extraction was killed or failed; the signal's reason when it fired
 */
export type PageExtract = (body: Buffer, contentType: string | null, maxChars: number, signal?: AbortSignal) => Promise<PageText>;

/** What fetchPageSummary needs: `extract` is required, the rest optional. */
export interface PageTextDeps {
  /** body → text, off the event loop (see {@link PageExtract}) */
  extract: PageExtract;
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
 * Fetches a web page a customer linked and returns its title and readable text (see pageBodyToText: main content
 * of HTML in any declared charset, plain text as is). The fetch runs here; the extraction runs in `deps.extract`.
 * @param url an http(s) URL
 * @throws FetchRefusedError from safeFetch — including `content_type` for anything that is not HTML or plain text
 *   (PDF, image, video…) and `too_large` past `maxBytes`; every reason means "could not read the page";
 *   ExtractionError from `deps.extract` when the page was fetched but its extraction was killed or failed
 */
export async function fetchPageSummary(url: string, deps: PageTextDeps): Promise<PageSummary> {
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
  const page = await deps.extract(res.body, res.contentType, deps.maxChars ?? PAGE_MAX_CHARS, deps.signal);
  return { ...page, finalUrl: res.finalUrl };
}
