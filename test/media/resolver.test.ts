import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchRefusedError } from '../../src/media/fetch-error.js';
import { createDnsResolver } from '../../src/media/resolver.js';
import { safeFetch } from '../../src/media/safe-fetch.js';
import type { HttpTransport } from '../../src/media/transport.js';
import { startFakeDns, type FakeDns } from './fake-dns.js';

/** The c-ares resolver against a real UDP name server on 127.0.0.1 (no query ever leaves the machine). */
let dns: FakeDns;
beforeAll(async () => {
  dns = await startFakeDns({
    'dual.test': { a: ['93.184.216.34'], aaaa: ['2606:2800:220:1::248'] },
    'v4only.test': { a: ['93.184.216.35'] },
    'v6only.test': { aaaa: ['2001:4860:4860::8888'] },
    'empty.test': {},
    'blackhole.test': { silent: true },
    'loopback.test': { a: ['127.0.0.1'] },
    'v4compat.test': { a: ['93.184.216.34'], aaaa: ['::7f00:1'] },
  });
});
afterAll(() => dns.close());

const resolverWith = (o: { timeoutMs?: number; tries?: number } = {}) => createDnsResolver({ servers: [dns.server], timeoutMs: 300, tries: 1, ...o });
const codeOf = async (p: Promise<unknown>) => ((await p.then(() => null, (e: unknown) => e)) as { code?: string } | null)?.code;

describe('createDnsResolver', () => {
  it('asks A and AAAA together and returns every address of both', async () => {
    const resolve = resolverWith();
    expect(await resolve('dual.test')).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::248', family: 6 },
    ]);
    expect(await resolve('v4only.test')).toEqual([{ address: '93.184.216.35', family: 4 }]);
    expect(await resolve('V6ONLY.test.')).toEqual([{ address: '2001:4860:4860::8888', family: 6 }]);
    expect(dns.queries.filter((q) => q.name === 'dual.test').map((q) => q.type).sort()).toEqual(['A', 'AAAA']);
  });

  it('fails with ENOTFOUND for an unknown name and ENODATA for a name without addresses', async () => {
    expect(await codeOf(resolverWith()('nowhere.test'))).toBe('ENOTFOUND');
    expect(await codeOf(resolverWith()('empty.test'))).toBe('ENODATA');
  });

  it('gives up on a silent name server after its timeout', async () => {
    const started = Date.now();
    expect(await codeOf(resolverWith({ timeoutMs: 200, tries: 2 })('blackhole.test'))).toBe('ETIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('cancels only its own lookup when its signal fires', async () => {
    const resolve = resolverWith({ timeoutMs: 5000 });
    const ctl = new AbortController();
    const started = Date.now();
    const cancelled = codeOf(resolve('blackhole.test', ctl.signal));
    const other = resolve('dual.test');
    setTimeout(() => ctl.abort(), 100);
    expect(await cancelled).toBe('ECANCELLED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await other).map((a) => a.address)).toContain('93.184.216.34');
  });

  it('answers IP literals and localhost without a query', async () => {
    const before = dns.queries.length;
    const resolve = resolverWith();
    expect(await resolve('93.184.216.34')).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(await resolve('::1')).toEqual([{ address: '::1', family: 6 }]);
    for (const name of ['localhost', 'LOCALHOST.', 'shop.localhost']) {
      expect((await resolve(name)).map((a) => a.address)).toEqual(['127.0.0.1', '::1']);
    }
    expect(dns.queries.length).toBe(before);
  });
});

describe('safeFetch with the c-ares resolver', () => {
  /** Nothing may be connected to: every case here is refused before a connection or gives up in DNS. */
  const noConnection: HttpTransport = () => Promise.reject(Object.assign(new Error('test guard: no connection expected'), { code: 'ETESTGUARD' }));
  const fetchVia = (url: string, timeoutMs = 2000) =>
    safeFetch(url, { resolver: resolverWith({ timeoutMs: 5000 }), transport: noConnection, timeoutMs }).then(
      () => null,
      (e: unknown) => e as FetchRefusedError,
    );

  it('refuses names whose DNS answer is loopback or IPv4-compatible (::/96), before connecting', async () => {
    expect((await fetchVia('http://loopback.test/'))?.reason).toBe('address');
    const v4compat = await fetchVia('http://v4compat.test/');
    expect(v4compat?.reason).toBe('address');
    expect(v4compat?.message).toContain('ipv4Compatible');
  });

  it('stops at its deadline when the name server never answers', async () => {
    const started = Date.now();
    const e = await fetchVia('http://blackhole.test/', 300);
    expect(e).toBeInstanceOf(FetchRefusedError);
    expect(e?.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
