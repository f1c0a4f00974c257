import { lookup } from 'node:dns/promises';

/** One resolved address of a host name. */
export interface ResolvedAddress {
  /** e.g. `93.184.216.34` or `2001:db8::1` (no brackets) */
  address: string;
  family: 4 | 6;
}

/**
 * Resolves a host name to every address it has. Injected into safeFetch so tests can map names to any address
 * (and count calls) without a DNS server.
 * @throws anything; safeFetch turns a failure into a `dns` FetchRefusedError carrying the error's `code`
 */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/**
 * The system resolver: `dns.promises.lookup(host, { all: true })`, i.e. getaddrinfo with /etc/hosts and the
 * system's search rules — what `http.request` itself would have used, so policy and connection see the same
 * answer. `all: true` matters: the policy must see every address, not the first one getaddrinfo sorts up.
 * @throws Error with `code` (`ENOTFOUND`, `EAI_AGAIN`, …)
 */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};
