import { describe, expect, it } from 'vitest';
import { addressRange, isAddressAllowed, isHostAllowListed, parseAllowList } from '../../src/media/address-policy.js';

describe('isAddressAllowed (default policy)', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['febf::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456:789a::1', 'uniqueLocal'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    // IPv4-mapped IPv6 is judged by the IPv4 address it maps
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:192.168.0.1', 'private'],
    // IPv6 forms that embed or translate IPv4
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['64:ff9b::8.8.8.8', 'rfc6052'],
    ['64:ff9b:1::a00:1', 'rfc6052'],
    ['::ffff:0:7f00:1', 'rfc6145'],
    ['2002:7f00:1::1', '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    // IPv4-compatible (::/96, deprecated): ipaddr.js calls these unicast; `[::127.0.0.1]` in a URL becomes ::7f00:1
    ['::7f00:1', 'ipv4Compatible'],
    ['::127.0.0.1', 'ipv4Compatible'],
    ['::a00:1', 'ipv4Compatible'],
    ['::8.8.8.8', 'ipv4Compatible'],
    ['::2', 'ipv4Compatible'],
    ['0:0:0:0:0:0:a9fe:a9fe', 'ipv4Compatible'],
    ['::ffff:169.254.169.254%eth0', 'linkLocal'],
  ])('refuses %s (%s)', (ip, range) => {
    expect(addressRange(ip)).toBe(range);
    expect(isAddressAllowed(ip)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '100.63.255.255', '100.128.0.1', '172.32.0.1', '2001:4860:4860::8888', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'allows public %s',
    (ip) => {
      expect(addressRange(ip)).toBe('unicast');
      expect(isAddressAllowed(ip)).toBe(true);
    },
  );

  it.each(['', 'localhost', 'example.com', '0177.0.0.1', '2130706433', '127.1', '1.2.3.4.5', '[::1'])('refuses non-addresses like %j', (s) => {
    expect(addressRange(s)).toBe('invalid');
    expect(isAddressAllowed(s)).toBe(false);
  });
});

describe('parseAllowList', () => {
  const allow = parseAllowList(' 127.0.0.1 , 10.0.0.0/8,files.internal, ::1 ,Files.Example.COM.,fd00::/8,,');

  it('permits listed addresses and ranges, nothing next to them', () => {
    expect(isAddressAllowed('127.0.0.1', allow)).toBe(true);
    expect(isAddressAllowed('127.0.0.2', allow)).toBe(false);
    expect(isAddressAllowed('10.1.2.3', allow)).toBe(true);
    expect(isAddressAllowed('::ffff:10.1.2.3', allow)).toBe(true);
    expect(isAddressAllowed('11.0.0.1', allow)).toBe(true); // public anyway
    expect(isAddressAllowed('192.168.0.1', allow)).toBe(false);
    expect(isAddressAllowed('::1', allow)).toBe(true);
    expect(isAddressAllowed('fd12::1', allow)).toBe(true);
    expect(isAddressAllowed('fc00::1', allow)).toBe(false);
    expect(isAddressAllowed('169.254.169.254', allow)).toBe(false);
  });

  it('permits listed host names, case- and trailing-dot-insensitive, and nothing else', () => {
    expect(isHostAllowListed('files.internal', allow)).toBe(true);
    expect(isHostAllowListed('FILES.INTERNAL.', allow)).toBe(true);
    expect(isHostAllowListed('files.example.com', allow)).toBe(true);
    expect(isHostAllowListed('evil.files.internal', allow)).toBe(false);
    expect(isHostAllowListed('internal', allow)).toBe(false);
    expect(isHostAllowListed('[::1]', allow)).toBe(false); // addresses are ranges, not names
  });

  it('reads a dotted tail after :: as IPv4-compatible, not IPv4-mapped (ipaddr.js would map it)', () => {
    const allow = parseAllowList('::10.0.0.1');
    expect(isAddressAllowed('::a00:1', allow)).toBe(true);
    expect(isAddressAllowed('10.0.0.1', allow)).toBe(false);
  });

  it('maps IPv4-mapped CIDRs onto IPv4', () => {
    const mapped = parseAllowList('::ffff:192.168.0.0/112');
    expect(isAddressAllowed('192.168.3.4', mapped)).toBe(true);
    expect(isAddressAllowed('192.169.0.1', mapped)).toBe(true); // public anyway
    expect(isAddressAllowed('10.0.0.1', mapped)).toBe(false);
  });

  it('is empty for an empty or missing setting', () => {
    for (const spec of [undefined, '', ' , ']) {
      const empty = parseAllowList(spec);
      expect(empty.hosts.size).toBe(0);
      expect(empty.ranges).toHaveLength(0);
      expect(isAddressAllowed('127.0.0.1', empty)).toBe(false);
    }
  });

  it.each(['10.0.0.0/33', '10.0.0/8', 'http://files.internal', 'files internal', 'a..b', '*.example.com', '::1/129'])('rejects the bad entry %j', (entry) => {
    expect(() => parseAllowList(`127.0.0.1,${entry}`)).toThrow(/media allow-list/);
  });
});
