import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { normalizeHost } from './address-policy.js';
import type { ResolvedAddress } from './resolver.js';

/** One GET on an address that the caller has already checked. */
export interface TransportRequest {
  /** The hop's URL; its host name stays the `Host` header and, for https, the TLS SNI name and certificate name. */
  url: URL;
  /**
   * The checked addresses to connect to, in preference order (at least one). The transport must connect to one of
   * these and must not resolve the host name again.
   */
  addresses: ResolvedAddress[];
  headers: Record<string, string>;
  /** Aborts connecting and reading; safeFetch combines the caller's signal with its deadline here. */
  signal: AbortSignal;
}

/** The answer's head and a body stream the caller must read to the end or destroy. */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

/**
 * Sends one GET and resolves with the response head (redirects are not followed: safeFetch checks every hop).
 * Injected into safeFetch so tests can observe which address a request was pinned to, or that none was sent.
 * @throws Error with Node's `code` (ECONNREFUSED, ECONNRESET, CERT_…, ABORT_ERR) when no response head arrives
 */
export type HttpTransport = (req: TransportRequest) => Promise<TransportResponse>;

/**
 * The default transport: node:http/node:https with `agent: false` (a fresh socket per hop: a pooled keep-alive
 * socket is keyed by host name, not by the address we checked, and media fetches are rare enough not to need one).
 * The connection is pinned with a `lookup` hook that answers with the checked address instead of asking DNS again:
 * that connect-time hook is what defeats DNS rebinding (a name that resolves to a public address for the check and
 * to 127.0.0.1 for the connection). The host name still goes to `http.request`, so Node derives the `Host` header,
 * the SNI name and the certificate check from it. IP-literal hosts never reach `lookup` (Node connects to them
 * directly), which is fine: the literal is the address that was checked.
 */
export const nodeTransport: HttpTransport = (req) =>
  new Promise<TransportResponse>((resolve, reject) => {
    const host = normalizeHost(req.url.hostname);
    const mod = req.url.protocol === 'https:' ? https : http;
    const request = mod.request({
      protocol: req.url.protocol,
      host,
      port: req.url.port || undefined,
      path: `${req.url.pathname}${req.url.search}`,
      method: 'GET',
      headers: req.headers,
      signal: req.signal,
      agent: false,
      lookup: pinnedLookup(host, req.addresses),
    });
    request.once('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
    request.once('error', reject);
    request.end();
  });

/**
 * A `net.connect` lookup hook that answers with the checked addresses only. Handles both call shapes: `all: true`
 * (Node 20's default happy-eyeballs `autoSelectFamily` asks for a list and tries each in turn — all of them checked)
 * and the single-address callback (the first one).
 */
function pinnedLookup(expectedHost: string, addresses: ResolvedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    if (normalizeHost(hostname) !== expectedHost) {
      // Never connect a name we did not check (defensive: Node passes the request's host here).
      callback(Object.assign(new Error('lookup for an unchecked host'), { code: 'ENOTFOUND' }), '', 0);
      return;
    }
    const first = addresses[0];
    if (!first) {
      callback(Object.assign(new Error('no checked address'), { code: 'ENOTFOUND' }), '', 0);
    } else if (options.all) {
      (callback as unknown as (e: null, all: ResolvedAddress[]) => void)(null, addresses);
    } else {
      callback(null, first.address, first.family);
    }
  };
}
