/**
 * Why a media fetch did not produce a body:
 * - `scheme`: not an absolute `http:`/`https:` URL, or it carries credentials (`user:pass@`)
 * - `address`: the host is, or resolves to, an address the policy refuses (any one of its addresses suffices)
 * - `dns`: the host name did not resolve (or resolved to nothing)
 * - `redirect`: more redirects than allowed, or a redirect without a usable `Location`
 * - `too_large`: the body (after content decoding) is longer than `maxBytes`, or `Content-Length` said so up front
 * - `content_type`: the caller's `accept` check refused the response's content type
 * - `timeout`: the whole request (resolution, every hop, the body) took longer than `timeoutMs`
 * - `aborted`: the caller's AbortSignal fired
 * - `status`: the final answer was not 2xx (`status` holds it)
 * - `network`: connect/TLS/socket failure (`code` holds Node's error code, e.g. `ECONNREFUSED`)
 */
export type FetchRefusedReason =
  | 'scheme'
  | 'address'
  | 'dns'
  | 'redirect'
  | 'too_large'
  | 'content_type'
  | 'timeout'
  | 'aborted'
  | 'status'
  | 'network';

/**
 * A media fetch that was refused or failed. Callers branch on `reason` (and `status`), never on the message. The
 * message names the URL without its query string or fragment (those carry tokens and signatures) and never
 * carries credentials, so it is safe to log.
 */
export class FetchRefusedError extends Error {
  override readonly name = 'FetchRefusedError';
  constructor(
    readonly reason: FetchRefusedReason,
    message: string,
    readonly options: { status?: number; code?: string } = {},
  ) {
    super(message);
  }
  /** The HTTP status of a `status` refusal, otherwise null. */
  get status(): number | null {
    return this.options.status ?? null;
  }
  /** Node's error code of a `network`/`dns` failure (e.g. `ECONNRESET`, `ENOTFOUND`), otherwise null. */
  get code(): string | null {
    return this.options.code ?? null;
  }
}

/**
 * A URL as it may appear in logs and error messages: scheme, host, port and path; no credentials, query or
 * fragment. Unparseable input gives `<invalid url>` (the raw string may hold anything).
 */
export function redactUrl(url: URL | string): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return '<invalid url>';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `${u.protocol}…`;
  return `${u.protocol}//${u.host}${u.pathname}`;
}
