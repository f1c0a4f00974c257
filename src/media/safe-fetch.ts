/**
 * Fetching URLs that customers or the LLM chose, without letting them reach our own network (SSRF).
 *
 * Why node:http and not axios (already a dependency): with axios the redirect hops are followed inside
 * follow-redirects, so our only per-hop hook would be the agent's `lookup` — and Node skips `lookup` entirely for
 * IP-literal hosts, so `302 → http://10.0.0.1/` would need a second, separate check in `beforeRedirect`. axios also
 * honours HTTP(S)_PROXY from the environment unless told not to (the proxy, not the target, would then be what
 * gets checked), its `timeout` is a socket-idle timer rather than a deadline for the whole exchange, and its errors
 * carry the full URL with the query string. A loop over hops with node:http keeps every decision in this file:
 * parse → resolve once → check every address → connect to exactly those addresses → repeat per redirect.
 */
import { isIP } from 'node:net';
import { addressRange, EMPTY_ALLOW_LIST, isAddressAllowed, isHostAllowListed, normalizeHost, type AllowList } from './address-policy.js';
import { FetchRefusedError, redactUrl } from './fetch-error.js';
import { readBodyCapped } from './read-body.js';
import { defaultResolver, type ResolvedAddress, type Resolver } from './resolver.js';
import { nodeTransport, type HttpTransport } from './transport.js';

/** Default body cap: 10 MiB, WeCom's limit for an image or video upload. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
/** Default deadline for the whole request, ms. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default number of redirects followed (each hop is checked like the first). */
export const DEFAULT_MAX_REDIRECTS = 3;

/** How one fetch may behave; every field has a safe default. */
export interface SafeFetchOptions {
  /** Body cap in bytes, after content decoding (default {@link DEFAULT_MAX_BYTES}). */
  maxBytes?: number;
  /** Deadline in milliseconds for everything: resolution, every hop, the body (default {@link DEFAULT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Redirects followed before refusing with `redirect` (default 3; 0 refuses any redirect). */
  maxRedirects?: number;
  /** Hosts/ranges permitted beyond public unicast (see parseAllowList); default none. */
  allowList?: AllowList;
  /** Name resolution (default: c-ares A + AAAA with a timeout, cancelled when the fetch ends; see createDnsResolver). */
  resolver?: Resolver;
  /** One GET on a checked address (default: node:http/https pinned to that address). */
  transport?: HttpTransport;
  /** Extra request headers, e.g. `{ accept: 'text/html' }`; `host` is always derived from the URL. */
  headers?: Record<string, string>;
  /**
   * Checked on the final 2xx head before the body is read, so a page fetch does not download 1 MB of video.
   * @param contentType the lower-cased `Content-Type` header without parameters, or null when absent
   */
  accept?: (contentType: string | null) => boolean;
}

/** A fetched 2xx body. */
export interface SafeFetchResult {
  status: number;
  /** The full `Content-Type` header as sent (parameters such as `charset` kept), or null when absent. */
  contentType: string | null;
  body: Buffer;
  /** The URL of the last hop. It may carry a query string with tokens: do not log it (see redactUrl). */
  finalUrl: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_HEADERS: Record<string, string> = {
  'user-agent': 'Mozilla/5.0 (compatible; wechat-ai-bridge media fetch)',
  accept: '*/*',
  // Asking for identity keeps byte counts honest; gzip/deflate/br are still decoded if a server ignores this.
  'accept-encoding': 'identity',
};

/**
 * GETs an http(s) URL whose host must resolve only to permitted addresses, following at most `maxRedirects`
 * redirects (each re-checked), within `timeoutMs` and `maxBytes`.
 *
 * A host is permitted when it is named in the allow-list, or when EVERY address it resolves to is public unicast
 * or inside an allow-listed range — one private address among public ones refuses the whole name, since the
 * connection could land on any of them. The connection then goes to the checked addresses only (no second
 * resolution, so a rebinding DNS server cannot swap in 127.0.0.1 between check and connect).
 *
 * @param url absolute `http:`/`https:` URL without credentials
 * @param signal aborts the fetch (reason `aborted`); the deadline is `options.timeoutMs` either way
 * @returns `{ status, contentType, body, finalUrl }` of a 2xx answer
 * @throws FetchRefusedError `scheme` | `address` | `dns` | `redirect` | `too_large` | `content_type` | `timeout` |
 *   `aborted` | `status` | `network`; messages carry no query string
 */
export async function safeFetch(url: string | URL, options: SafeFetchOptions = {}, signal?: AbortSignal): Promise<SafeFetchResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
  let label = redactUrl(url);
  try {
    let current = parseHttpUrl(url);
    for (let hop = 0; ; hop++) {
      label = redactUrl(current);
      const addresses = await checkTarget(current, options, combined, label);
      combined.throwIfAborted();
      const res = await (options.transport ?? nodeTransport)({
        url: current,
        addresses,
        headers: requestHeaders(options.headers),
        signal: combined,
      });
      const location = headerValue(res.headers.location);
      if (REDIRECTS.has(res.status) && location) {
        res.body.destroy();
        if (hop >= (options.maxRedirects ?? DEFAULT_MAX_REDIRECTS)) {
          throw new FetchRefusedError('redirect', `too many redirects (more than ${options.maxRedirects ?? DEFAULT_MAX_REDIRECTS}) from ${label}`);
        }
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new FetchRefusedError('redirect', `unusable redirect location from ${label}`);
        }
        current = parseHttpUrl(next);
        continue;
      }
      if (res.status < 200 || res.status > 299) {
        res.body.destroy();
        throw new FetchRefusedError('status', `HTTP ${res.status} from ${label}`, { status: res.status });
      }
      const contentType = headerValue(res.headers['content-type']) ?? null;
      if (options.accept && !options.accept(mimeOf(contentType))) {
        res.body.destroy();
        throw new FetchRefusedError('content_type', `content type ${mimeOf(contentType) ?? 'none'} refused from ${label}`);
      }
      const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
      const declared = Number(headerValue(res.headers['content-length']));
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new FetchRefusedError('too_large', `${label} declares ${declared} bytes, more than ${maxBytes}`);
      }
      const body = await readBodyCapped(res.body, {
        maxBytes,
        contentEncoding: headerValue(res.headers['content-encoding']),
        signal: combined,
        label,
      });
      return { status: res.status, contentType, body, finalUrl: current.href };
    }
  } catch (e) {
    throw classify(e, signal, deadline, timeoutMs, label);
  }
}

/**
 * `url` as a URL we may fetch: absolute, `http:`/`https:`, no `user:pass@`.
 * @throws FetchRefusedError `scheme`
 */
function parseHttpUrl(url: string | URL): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchRefusedError('scheme', 'not an absolute URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FetchRefusedError('scheme', `scheme ${u.protocol} is not fetched`);
  }
  if (u.username || u.password) {
    throw new FetchRefusedError('scheme', `URL with credentials refused: ${redactUrl(u)}`);
  }
  return u;
}

/**
 * The addresses one hop may connect to.
 * @throws FetchRefusedError `address` | `dns`; the abort reason when `signal` fires during resolution
 */
async function checkTarget(url: URL, options: SafeFetchOptions, signal: AbortSignal, label: string): Promise<ResolvedAddress[]> {
  const allow = options.allowList ?? EMPTY_ALLOW_LIST;
  const host = normalizeHost(url.hostname);
  const hostAllowListed = isHostAllowListed(host, allow);
  const literal = isIP(host);
  if (literal) {
    if (!hostAllowListed && !isAddressAllowed(host, allow)) {
      throw new FetchRefusedError('address', `${label}: address ${host} is ${addressRange(host)}, refused`);
    }
    return [{ address: host, family: literal === 6 ? 6 : 4 }];
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await raceAbort((options.resolver ?? defaultResolver)(host, signal), signal);
  } catch (e) {
    if (signal.aborted) throw e;
    const code = errorCode(e);
    throw new FetchRefusedError('dns', `${label}: host did not resolve (${code ?? 'error'})`, code ? { code } : {});
  }
  if (addresses.length === 0) throw new FetchRefusedError('dns', `${label}: host resolved to no address`);
  if (!hostAllowListed) {
    const refused = addresses.find((a) => !isAddressAllowed(a.address, allow));
    if (refused) {
      throw new FetchRefusedError('address', `${label}: resolves to ${refused.address} (${addressRange(refused.address)}), refused`);
    }
  }
  return addresses;
}

/** Turns whatever escaped the loop into a FetchRefusedError; which signal fired decides timeout vs aborted. */
function classify(e: unknown, callerSignal: AbortSignal | undefined, deadline: AbortSignal, timeoutMs: number, label: string): FetchRefusedError {
  if (e instanceof FetchRefusedError) return e;
  if (callerSignal?.aborted) return new FetchRefusedError('aborted', `fetch of ${label} aborted`);
  if (deadline.aborted) return new FetchRefusedError('timeout', `fetch of ${label} took longer than ${timeoutMs} ms`);
  const code = errorCode(e);
  // Only the code: Node's messages are harmless, but a custom transport's might quote the URL.
  return new FetchRefusedError('network', `fetch of ${label} failed (${code ?? 'error'})`, code ? { code } : {});
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** Defaults plus the caller's headers, minus any `host`: the Host header (and SNI) must name the checked host. */
function requestHeaders(extra: Record<string, string> | undefined): Record<string, string> {
  const headers = { ...DEFAULT_HEADERS };
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (name.toLowerCase() !== 'host') headers[name.toLowerCase()] = value;
  }
  return headers;
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code ? code.slice(0, 40) : undefined;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `text/HTML; charset=gbk` → `text/html`; null when absent or empty. */
export function mimeOf(contentType: string | null | undefined): string | null {
  const mime = contentType?.split(';')[0]?.trim().toLowerCase();
  return mime ? mime : null;
}
