import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which IP addresses a media fetch may connect to. Classification is ipaddr.js' `range()` (its tables follow the
 * IANA special-purpose registries, RFC 6890 and successors), so we keep no CIDR table of our own: only `unicast`
 * passes. Everything else is refused — loopback, private, link-local, unique-local, unspecified, CGNAT,
 * multicast, broadcast, reserved/documentation, and the IPv6 forms that embed or translate an IPv4 address
 * (6to4, Teredo, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, SIIT `::ffff:0:0/96`), because the embedded IPv4
 * address may be internal and a gateway would carry us there. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is judged by
 * its IPv4 address: the kernel connects to exactly that address.
 *
 * Two gaps in ipaddr.js are closed here: it has no range for the deprecated IPv4-compatible block `::/96`
 * (`http://[::127.0.0.1]/` becomes `::7f00:1`, which it calls `unicast`; an automatic tunnel would carry it to
 * 127.0.0.1), so we name that block `ipv4Compatible` and refuse it; and it reads a dotted tail after `::` as
 * IPv4-mapped (`::127.0.0.1` as `::ffff:127.0.0.1`), so IPv6 text is first put in canonical hex form by the WHATWG
 * URL parser, the same one that turns the URL's host into the address we connect to.
 */

/** A parsed allow-list: host names (lower-case, no trailing dot) and address ranges an operator permits. */
export interface AllowList {
  readonly hosts: ReadonlySet<string>;
  readonly ranges: ReadonlyArray<readonly [ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

/** The allow-list that permits nothing beyond public unicast addresses. */
export const EMPTY_ALLOW_LIST: AllowList = Object.freeze({ hosts: new Set<string>(), ranges: [] });

/** A host name as it appears in an allow-list or a URL: `[::1]` → `::1`, lower-case, no trailing dot. */
export function normalizeHost(host: string): string {
  const h = host.trim().toLowerCase();
  const unbracketed = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/**
 * Parses an operator's allow-list, e.g. `127.0.0.1,10.0.0.0/8,::1,files.internal`: comma-separated entries, each an
 * IP address (a /32 or /128), a CIDR range, or a host name. Whitespace around entries and empty entries are
 * ignored; `undefined`/empty gives {@link EMPTY_ALLOW_LIST}.
 * @throws Error naming the entry when one is neither an IP, a CIDR nor a plausible host name — a typo in this
 *   setting must stop startup rather than silently permit or refuse.
 */
export function parseAllowList(spec: string | undefined): AllowList {
  if (!spec || !spec.trim()) return EMPTY_ALLOW_LIST;
  const hosts = new Set<string>();
  const ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = [];
  for (const raw of spec.split(',')) {
    const entry = normalizeHost(raw);
    if (!entry) continue;
    if (entry.includes('/')) {
      let cidr: [ipaddr.IPv4 | ipaddr.IPv6, number];
      try {
        // isIP on the address part: parseCIDR also takes legacy forms such as `10.0.0/8`, which read ambiguously.
        const address = entry.slice(0, entry.indexOf('/'));
        const family = isIP(address);
        if (!family) throw new Error('not an address');
        cidr = ipaddr.parseCIDR(`${family === 6 ? canonicalIpv6(address) : address}${entry.slice(entry.indexOf('/'))}`);
      } catch {
        throw new Error(`media allow-list: "${entry}" is not a valid CIDR range`);
      }
      ranges.push(unmapRange(cidr));
    } else if (isIP(entry)) {
      const addr = parseIp(entry);
      if (!addr) throw new Error(`media allow-list: "${entry}" is not a usable IP address`);
      ranges.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(entry)) {
      hosts.add(entry);
    } else {
      throw new Error(`media allow-list: "${entry}" is neither an IP address, a CIDR range nor a host name`);
    }
  }
  return { hosts, ranges };
}

/**
 * The ipaddr.js range name of an address after IPv4-mapped IPv6 is unmapped: `unicast` for a public address,
 * otherwise e.g. `loopback`, `private`, `linkLocal`, `uniqueLocal`, `carrierGradeNat`, `rfc6052`; `invalid` when the
 * string is not an IP address (Node's `isIP` decides, so odd IPv4 spellings like `0177.1` count as invalid).
 */
export function addressRange(ip: string): string {
  const parsed = parseIp(ip);
  return parsed ? rangeOf(parsed) : 'invalid';
}

/** Whether `host` (a URL host name or an IP literal, brackets allowed) is named in the allow-list's host names. */
export function isHostAllowListed(host: string, allow: AllowList = EMPTY_ALLOW_LIST): boolean {
  return allow.hosts.has(normalizeHost(host));
}

/**
 * Whether a fetch may connect to `ip`: public unicast, or inside one of the allow-list's ranges. Invalid strings
 * are refused (fail closed). Host-name allow-list entries are not consulted here: see {@link isHostAllowListed}.
 * @param ip a resolved address, e.g. `93.184.216.34`, `2001:db8::1`, `::ffff:127.0.0.1` (zone ids allowed)
 */
export function isAddressAllowed(ip: string, allow: AllowList = EMPTY_ALLOW_LIST): boolean {
  const parsed = parseIp(ip);
  if (!parsed) return false;
  if (allow.ranges.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits))) return true;
  return rangeOf(parsed) === 'unicast';
}

/** ipaddr.js' range name, except `ipv4Compatible` for `::/96` beyond `::` and `::1` (see the file comment). */
function rangeOf(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  const range = addr.range();
  if (addr.kind() === 'ipv6' && range === 'unicast' && (addr as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) {
    return 'ipv4Compatible';
  }
  return range;
}

function parseIp(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = normalizeHost(ip);
  // isIP first: ipaddr.parse also accepts legacy spellings (octal, single 32-bit number) that no resolver returns.
  const family = isIP(bare.split('%')[0] ?? '');
  if (!family) return null;
  try {
    return unmap(ipaddr.parse(family === 6 ? canonicalIpv6(bare) : bare));
  } catch {
    return null;
  }
}

/**
 * `::127.0.0.1` → `::7f00:1`, `::ffff:127.0.0.1` → `::ffff:7f00:1`: hex groups only, as the URL parser writes them
 * (a zone id is kept as it was).
 * @throws TypeError when the URL parser refuses the address (the callers' try/catch turns that into a refusal)
 */
function canonicalIpv6(address: string): string {
  if (!address.includes('.')) return address;
  const [ip = '', zone] = address.split('%', 2);
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1) + (zone === undefined ? '' : `%${zone}`);
}

function unmap(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
}

/** `::ffff:10.0.0.0/104` → `10.0.0.0/8`, so a mapped range in the config matches the unmapped addresses we compare. */
function unmapRange([addr, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number]): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  if (addr.kind() === 'ipv6' && bits >= 96 && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [addr, bits];
}
