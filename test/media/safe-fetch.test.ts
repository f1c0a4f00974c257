import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../src/media/address-policy.js';
import { FetchRefusedError } from '../../src/media/fetch-error.js';
import type { ResolvedAddress, Resolver } from '../../src/media/resolver.js';
import { safeFetch, type SafeFetchOptions } from '../../src/media/safe-fetch.js';
import { nodeTransport, type HttpTransport, type TransportRequest } from '../../src/media/transport.js';
import { startServer, type LocalServer } from './local-server.js';

/** The server's routes: enough to exercise every refusal and every success path. */
function route() {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const hop = (to: string) => {
      res.writeHead(302, { location: to });
      res.end();
    };
    switch (url.pathname) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('hello from loopback');
        return;
      case '/redirect':
        hop(url.searchParams.get('to') ?? '/ok');
        return;
      case '/chain': {
        // /chain?n=3 → /chain?n=2 → … → /ok
        const n = Number(url.searchParams.get('n'));
        hop(n > 0 ? `/chain?n=${n - 1}` : '/ok');
        return;
      }
      case '/big-declared':
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '5000' });
        res.end(Buffer.alloc(5000, 1));
        return;
      case '/big-chunked': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const tick = setInterval(() => {
          if (res.destroyed || sent >= 20) {
            clearInterval(tick);
            res.end();
            return;
          }
          res.write(Buffer.alloc(500, 2));
          sent++;
        }, 5);
        return;
      }
      case '/exact':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(1000, 3));
        return;
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        res.end(gzipSync(Buffer.from('compressed hello')));
        return;
      case '/gzip-bomb':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        res.end(gzipSync(Buffer.alloc(5 * 1024 * 1024)));
        return;
      case '/hang':
        return; // never answers
      case '/drip': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const tick = setInterval(() => (res.destroyed ? clearInterval(tick) : res.write('.')), 50);
        return;
      }
      case '/missing':
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('nope');
        return;
      case '/image':
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(Buffer.alloc(100));
        return;
      case '/host':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.headers.host ?? '');
        return;
      default:
        res.writeHead(500);
        res.end();
    }
  };
}

let server: LocalServer;
let v6: LocalServer | null = null;

beforeAll(async () => {
  server = await startServer(route());
  try {
    v6 = await startServer(route(), '::1');
  } catch {
    v6 = null; // no IPv6 loopback here: the [::1] refusal is still checked through the transport spy
  }
});
afterAll(async () => {
  await server.close();
  await v6?.close();
});

/**
 * A transport that records what it was asked to connect to and then really connects (nodeTransport) — but only to
 * loopback: should a regression let a public test address through, it fails here instead of sending a packet out.
 */
function spyTransport(): { transport: HttpTransport; calls: TransportRequest[] } {
  const calls: TransportRequest[] = [];
  const transport: HttpTransport = (req) => {
    calls.push(req);
    if (!req.addresses.every((a) => a.address === '127.0.0.1' || a.address === '::1')) {
      return Promise.reject(Object.assign(new Error('test guard: non-loopback connection'), { code: 'ETESTGUARD' }));
    }
    return nodeTransport(req);
  };
  return { calls, transport };
}

/** A resolver from a fixed table that counts its calls per name. */
function tableResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string): Promise<ResolvedAddress[]> => {
    calls.push(host);
    const list = table[host];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

async function refusal(p: Promise<unknown>): Promise<FetchRefusedError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FetchRefusedError);
  return e as FetchRefusedError;
}

const allowLoopback = parseAllowList('127.0.0.1');

/** safeFetch through the loopback-only guard transport unless a test passes its own. */
const fetchLocal = (url: string, options: SafeFetchOptions = {}, signal?: AbortSignal) =>
  safeFetch(url, { transport: spyTransport().transport, ...options }, signal);

describe('safeFetch refuses internal targets before connecting', () => {
  let spy: ReturnType<typeof spyTransport>;
  beforeEach(() => {
    spy = spyTransport();
    server.connections = 0;
    server.requests.length = 0;
    if (v6) v6.connections = 0;
  });
  const opts = (extra: SafeFetchOptions = {}): SafeFetchOptions => ({ transport: spy.transport, timeoutMs: 2000, ...extra });

  it('refuses http://127.0.0.1:<port>/ (loopback literal)', async () => {
    const e = await refusal(safeFetch(`${server.origin}/ok`, opts()));
    expect(e.reason).toBe('address');
    expect(e.message).toContain('loopback');
    expect(server.connections).toBe(0);
    expect(spy.calls).toHaveLength(0);
  });

  it('refuses http://10.0.0.1/ (private literal)', async () => {
    const e = await refusal(safeFetch('http://10.0.0.1/', opts()));
    expect(e.reason).toBe('address');
    expect(spy.calls).toHaveLength(0);
  });

  it.each(['http://2130706433:PORT/', 'http://0x7f.1:PORT/', 'http://0177.0.0.1:PORT/', 'http://127.1:PORT/', 'http://localhost.:PORT/'])(
    'refuses loopback in disguise: %s',
    async (url) => {
      const e = await refusal(safeFetch(url.replace('PORT', String(server.port)), opts()));
      expect(e.reason).toBe('address');
      expect(server.connections).toBe(0);
    },
  );

  it('refuses http://[::1]:<port>/ (IPv6 loopback literal) and http://[::ffff:127.0.0.1]:<port>/', async () => {
    const port = v6?.port ?? server.port;
    expect((await refusal(safeFetch(`http://[::1]:${port}/ok`, opts()))).reason).toBe('address');
    expect((await refusal(safeFetch(`http://[::ffff:127.0.0.1]:${server.port}/ok`, opts()))).reason).toBe('address');
    expect(spy.calls).toHaveLength(0);
    expect(v6?.connections ?? 0).toBe(0);
    expect(server.connections).toBe(0);
  });

  it.each(['[::127.0.0.1]', '[::7f00:1]', '[::ffff:7f00:1]', '[0:0:0:0:0:ffff:127.0.0.1]', '[::ffff:0:7f00:1]', '[::a00:1]'])(
    'refuses the IPv4-in-IPv6 literal http://%s:<port>/ without a connection',
    async (host) => {
      const e = await refusal(safeFetch(`http://${host}:${server.port}/ok`, opts()));
      expect(e.reason).toBe('address');
      expect(spy.calls).toHaveLength(0);
      expect(server.connections).toBe(0);
    },
  );

  it.each([
    ['127.0.0.1', ['127.0.0.1']],
    ['10.1.2.3', ['10.1.2.3']],
    ['::1', ['::1']],
    ['one public and one private address', ['93.184.216.34', '127.0.0.1']],
    ['a private address after public IPv6', ['2001:4860:4860::8888', '10.0.0.5']],
    ['169.254.169.254 (cloud metadata)', ['169.254.169.254']],
  ])('refuses a name that resolves to %s', async (_label, addresses) => {
    const resolver = tableResolver({ 'innocent.example': addresses });
    const e = await refusal(safeFetch(`http://innocent.example:${server.port}/ok?token=SECRET`, opts({ resolver })));
    expect(e.reason).toBe('address');
    expect(e.message).not.toContain('SECRET');
    expect(resolver.calls).toEqual(['innocent.example']);
    expect(spy.calls).toHaveLength(0);
    expect(server.connections).toBe(0);
    expect(v6?.connections ?? 0).toBe(0);
  });

  it('refuses localhost through the default resolver (answered as loopback without a DNS query)', async () => {
    expect((await refusal(safeFetch(`http://localhost:${server.port}/ok`, opts()))).reason).toBe('address');
    expect(server.connections).toBe(0);
  });

  it.each(['ftp://127.0.0.1/x', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/plain,hi', 'gopher://x/', 'not a url', '/relative/path'])(
    'refuses the non-http URL %s',
    async (url) => {
      expect((await refusal(safeFetch(url, opts({ allowList: allowLoopback })))).reason).toBe('scheme');
      expect(spy.calls).toHaveLength(0);
    },
  );

  it('refuses credentials in the URL, without echoing them', async () => {
    const e = await refusal(safeFetch(`http://user:hunter2@127.0.0.1:${server.port}/ok`, opts({ allowList: allowLoopback })));
    expect(e.reason).toBe('scheme');
    expect(e.message).not.toContain('hunter2');
    expect(server.connections).toBe(0);
  });

  it('reports a name that does not resolve as dns, with the code', async () => {
    const e = await refusal(safeFetch('http://nowhere.example/', opts({ resolver: tableResolver({}) })));
    expect(e.reason).toBe('dns');
    expect(e.code).toBe('ENOTFOUND');
    const empty = await refusal(safeFetch('http://empty.example/', opts({ resolver: async () => [] })));
    expect(empty.reason).toBe('dns');
  });
});

describe('safeFetch with an allow-list', () => {
  beforeEach(() => {
    server.connections = 0;
    server.requests.length = 0;
  });

  it('fetches from the local server when 127.0.0.1 is allow-listed', async () => {
    const res = await fetchLocal(`${server.origin}/ok?x=1`, { allowList: allowLoopback });
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('text/plain; charset=utf-8');
    expect(res.body.toString()).toBe('hello from loopback');
    expect(res.finalUrl).toBe(`${server.origin}/ok?x=1`);
    expect(server.requests).toEqual([{ url: '/ok?x=1', host: `127.0.0.1:${server.port}` }]);
  });

  it('connects to the checked address only: one resolution, Host header kept, no system DNS', async () => {
    // `.invalid` never resolves through the system resolver, so success proves the pinned address was used.
    let answers = 0;
    const resolver: Resolver = async () => (answers++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.9.9.9', family: 4 }]);
    const spy = spyTransport();
    const res = await fetchLocal(`http://rebind.invalid:${server.port}/host`, { resolver, allowList: allowLoopback, transport: spy.transport });
    expect(res.body.toString()).toBe(`rebind.invalid:${server.port}`);
    expect(answers).toBe(1);
    expect(spy.calls.map((c) => c.addresses)).toEqual([[{ address: '127.0.0.1', family: 4 }]]);
  });

  it('permits an allow-listed host name whatever it resolves to, and only that name', async () => {
    const resolver = tableResolver({ 'files.internal': ['127.0.0.1'], 'other.internal': ['127.0.0.1'] });
    const allowList = parseAllowList('files.internal');
    const res = await fetchLocal(`http://files.internal:${server.port}/ok`, { resolver, allowList });
    expect(res.body.toString()).toBe('hello from loopback');
    expect((await refusal(fetchLocal(`http://other.internal:${server.port}/ok`, { resolver, allowList }))).reason).toBe('address');
    expect(server.requests).toHaveLength(1);
  });

  it('refuses a redirect from an allowed host to a refused one, re-checking every hop', async () => {
    const resolver = tableResolver({ 'a.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'] });
    const allowList = parseAllowList('a.test');
    const base = `http://a.test:${server.port}`;
    for (const to of [`http://b.test:${server.port}/ok`, `http://127.0.0.1:${server.port}/ok`, 'http://10.0.0.1/ok', `http://[::1]:${server.port}/ok`]) {
      server.requests.length = 0;
      const e = await refusal(fetchLocal(`${base}/redirect?to=${encodeURIComponent(to)}`, { resolver, allowList }));
      expect(e.reason).toBe('address');
      expect(server.requests.map((r) => r.url.split('?')[0])).toEqual(['/redirect']);
    }
    const scheme = await refusal(fetchLocal(`${base}/redirect?to=${encodeURIComponent('file:///etc/passwd')}`, { resolver, allowList }));
    expect(scheme.reason).toBe('scheme');
    // A relative redirect on the allowed host is followed.
    const ok = await fetchLocal(`${base}/redirect?to=/ok`, { resolver, allowList });
    expect(ok.body.toString()).toBe('hello from loopback');
    expect(ok.finalUrl).toBe(`${base}/ok`);
    expect(resolver.calls.filter((h) => h === 'b.test')).toHaveLength(1);
  });

  it('follows at most 3 redirects', async () => {
    const ok = await fetchLocal(`${server.origin}/chain?n=2`, { allowList: allowLoopback });
    expect(ok.finalUrl).toBe(`${server.origin}/ok`);
    server.requests.length = 0;
    const e = await refusal(fetchLocal(`${server.origin}/chain?n=3`, { allowList: allowLoopback }));
    expect(e.reason).toBe('redirect');
    expect(server.requests).toHaveLength(4); // the first request and 3 followed hops; the 4th Location is not
    expect((await refusal(fetchLocal(`${server.origin}/chain?n=0`, { allowList: allowLoopback, maxRedirects: 0 }))).reason).toBe('redirect');
  });

  it('refuses a body over maxBytes announced by Content-Length', async () => {
    const e = await refusal(fetchLocal(`${server.origin}/big-declared`, { allowList: allowLoopback, maxBytes: 1000 }));
    expect(e.reason).toBe('too_large');
  });

  it('refuses a chunked body once it passes maxBytes', async () => {
    const e = await refusal(fetchLocal(`${server.origin}/big-chunked`, { allowList: allowLoopback, maxBytes: 1000 }));
    expect(e.reason).toBe('too_large');
  });

  it('accepts a body of exactly maxBytes', async () => {
    const res = await fetchLocal(`${server.origin}/exact`, { allowList: allowLoopback, maxBytes: 1000 });
    expect(res.body.length).toBe(1000);
  });

  it('decodes gzip and applies maxBytes to the decoded size', async () => {
    const res = await fetchLocal(`${server.origin}/gzip`, { allowList: allowLoopback });
    expect(res.body.toString()).toBe('compressed hello');
    const e = await refusal(fetchLocal(`${server.origin}/gzip-bomb`, { allowList: allowLoopback, maxBytes: 64 * 1024 }));
    expect(e.reason).toBe('too_large');
  });

  it('times out on a server that never answers', async () => {
    const started = Date.now();
    const e = await refusal(fetchLocal(`${server.origin}/hang`, { allowList: allowLoopback, timeoutMs: 300 }));
    expect(e.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('times out on a body that drips forever (the deadline covers the body)', async () => {
    const e = await refusal(fetchLocal(`${server.origin}/drip`, { allowList: allowLoopback, timeoutMs: 300 }));
    expect(e.reason).toBe('timeout');
  });

  it('reports the caller aborting as aborted', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const e = await refusal(fetchLocal(`${server.origin}/hang`, { allowList: allowLoopback, timeoutMs: 5000 }, ctl.signal));
    expect(e.reason).toBe('aborted');
  });

  it('refuses a non-2xx answer with its status and no query string in the message', async () => {
    const e = await refusal(fetchLocal(`${server.origin}/missing?sig=SECRET`, { allowList: allowLoopback }));
    expect(e.reason).toBe('status');
    expect(e.status).toBe(404);
    expect(e.message).toBe(`HTTP 404 from ${server.origin}/missing`);
  });

  it('refuses a content type the caller does not accept, before reading the body', async () => {
    const e = await refusal(fetchLocal(`${server.origin}/image`, { allowList: allowLoopback, accept: (t) => t === 'text/html' }));
    expect(e.reason).toBe('content_type');
  });

  it('reports a refused connection as network with the code', async () => {
    const closed = await startServer(() => undefined);
    const port = closed.port;
    await closed.close();
    const e = await refusal(fetchLocal(`http://127.0.0.1:${port}/`, { allowList: allowLoopback }));
    expect(e.reason).toBe('network');
    expect(e.code).toBe('ECONNREFUSED');
  });
});
