import { Resolver as DnsResolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/** One resolved address of a host name. */
export interface ResolvedAddress {
  /** e.g. `93.184.216.34` or `2001:db8::1` (no brackets) */
  address: string;
  family: 4 | 6;
}

/**
 * Resolves a host name to every address it has. Injected into safeFetch so tests can map names to any address
 * (and count calls) without a DNS server.
 * @param signal safeFetch's deadline and caller signal combined; a resolver should stop its lookup when it fires
 *   (fakes may ignore it: safeFetch stops waiting either way)
 * @throws anything; safeFetch turns a failure into a `dns` FetchRefusedError carrying the error's `code`
 */
export type Resolver = (hostname: string, signal?: AbortSignal) => Promise<ResolvedAddress[]>;

/** How {@link createDnsResolver} asks DNS. */
export interface DnsResolverOptions {
  /** ms c-ares waits for one answer before it retries (default 1500) */
  timeoutMs?: number;
  /** attempts per name server (default 2) */
  tries?: number;
  /** name servers (`ip` or `ip:port`) instead of /etc/resolv.conf's; tests point this at a local fake */
  servers?: string[];
}

const DEFAULT_TIMEOUT_MS = 1500;
const DEFAULT_TRIES = 2;

/**
 * A resolver built on node:dns `Resolver` (c-ares: A and AAAA queries on the event loop) rather than
 * `dns.lookup` (getaddrinfo on libuv's 4 threadpool threads, shared with WeChat and LLM lookups, fs and zlib).
 * Customers choose these names: a slow or black-holed name server would otherwise hold a pool thread for the
 * system resolver's full timeout, and getaddrinfo cannot be cancelled, so it kept running after the fetch gave up.
 * Here each lookup has its own c-ares channel with a timeout, and `cancel()` on abort ends that lookup alone.
 *
 * A and AAAA are asked together; the answer is every address of both (one failing, e.g. ENODATA for a v4-only
 * host, is fine while the other has addresses). What this does not read, unlike getaddrinfo: /etc/hosts and
 * nsswitch; names an operator wants through FETCH_ALLOW_HOSTS must be in DNS. `localhost` and `*.localhost` answer
 * 127.0.0.1 and ::1 without a query (RFC 6761 §6.3), so the policy refuses them as loopback. IP literals answer
 * themselves.
 * @throws Error with `code` (`ENOTFOUND`, `ENODATA`, `ETIMEOUT`, `ECANCELLED`, …) when neither query has an answer
 */
export function createDnsResolver(options: DnsResolverOptions = {}): Resolver {
  return async (hostname, signal) => {
    const family = isIP(hostname);
    if (family) return [{ address: hostname, family: family === 6 ? 6 : 4 }];
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (name === 'localhost' || name.endsWith('.localhost')) {
      return [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ];
    }
    signal?.throwIfAborted();
    const dns = new DnsResolver({ timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, tries: options.tries ?? DEFAULT_TRIES });
    if (options.servers) dns.setServers(options.servers);
    const cancel = () => dns.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const [v4, v6] = await Promise.allSettled([dns.resolve4(name), dns.resolve6(name)]);
      const addresses: ResolvedAddress[] = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 as const })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 as const })) : []),
      ];
      if (addresses.length > 0) return addresses;
      // Both failed (or both were empty): report the A query's error, the one that names the usual cause.
      if (v4.status === 'rejected') throw v4.reason;
      if (v6.status === 'rejected') throw v6.reason;
      return [];
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  };
}

/** The resolver safeFetch uses unless one is injected: {@link createDnsResolver} with its defaults. */
export const defaultResolver: Resolver = createDnsResolver();
