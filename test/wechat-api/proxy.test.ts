/**
 * WECHAT_API_PROXY: every WeCom / WeChat API call goes through the proxy when it is set. A real local proxy (the
 * `proxy` package: forward requests and CONNECT) counts what it carries; an https fake API with a self-signed
 * certificate (made with the openssl CLI: Node cannot create X.509 certificates) proves https calls are CONNECT
 * tunnels with TLS end to end, and the kf fake (http) proves plain-http targets are forward-proxied, up to an
 * answered customer message through the real app.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createProxy, type ProxyServer } from 'proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { WechatApiError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createApiClient } from '../../src/wechat-api/api-client.js';
import { createApiHttp } from '../../src/wechat-api/http.js';
import { createTokenProvider } from '../../src/wechat-api/token.js';
import { fetchWecomToken } from '../../src/wechat-api/wecom-token.js';
import { textMsg } from '../fakes/wechat-mp-push.js';
import { CREDS, OPEN_KFID, startHarness, textsTo } from '../helpers/harness.js';
import { MP, MP_SECRET, startMpHarness } from '../helpers/mp-harness.js';

const CORP = 'wwproxytest0001';
const SECRET = 'proxy-test-secret';
const PROXY_USER = 'bridge';
const PROXY_PASS = 'p@ss:word/1';

interface CountingProxy {
  url: string;
  /** `url` with the proxy's user:password */
  authUrl: string;
  /** CONNECT targets (`host:port`), one per tunnel opened */
  connects: string[];
  /** absolute URLs of forward-proxied (plain http) requests */
  forwards: string[];
  /** requests refused for want of the right Proxy-Authorization */
  refused: number;
  requireAuth(on: boolean): void;
  close(): Promise<void>;
}

async function startProxy(): Promise<CountingProxy> {
  const server: ProxyServer = createProxy(http.createServer());
  const connects: string[] = [];
  const forwards: string[] = [];
  let auth = false;
  let refused = 0;
  const expected = `Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASS}`).toString('base64')}`;
  server.authenticate = (req) => {
    const ok = !auth || req.headers['proxy-authorization'] === expected;
    if (!ok) refused += 1;
    return ok;
  };
  // Listeners added after createProxy's own: they only watch.
  server.prependListener('connect', (req: http.IncomingMessage) => connects.push(req.url ?? ''));
  server.prependListener('request', (req: http.IncomingMessage) => forwards.push(req.url ?? ''));
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    authUrl: `http://${encodeURIComponent(PROXY_USER)}:${encodeURIComponent(PROXY_PASS)}@127.0.0.1:${port}`,
    connects,
    forwards,
    get refused() {
      return refused;
    },
    requireAuth: (on) => {
      auth = on;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A minimal WeCom over https: gettoken and kf/send_msg, recording what reached it. */
async function startHttpsApi(key: Buffer, cert: Buffer) {
  const seen: string[] = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    seen.push(url.pathname);
    req.resume();
    req.once('end', () => {
      res.setHeader('content-type', 'application/json');
      if (url.pathname === '/cgi-bin/gettoken') {
        const ok = url.searchParams.get('corpid') === CORP && url.searchParams.get('corpsecret') === SECRET;
        res.end(JSON.stringify(ok ? { errcode: 0, errmsg: 'ok', access_token: 'TOKEN-1', expires_in: 7200 } : { errcode: 40001, errmsg: 'invalid credential' }));
      } else if (url.pathname === '/cgi-bin/kf/send_msg') {
        const ok = url.searchParams.get('access_token') === 'TOKEN-1';
        res.end(JSON.stringify(ok ? { errcode: 0, errmsg: 'ok', msgid: 'out-1' } : { errcode: 40014, errmsg: 'invalid access_token' }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    hostPort: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function kfClient(baseUrl: string, o: Parameters<typeof createApiHttp>[2]) {
  const httpClient = createApiHttp(baseUrl, 5000, o);
  const metrics = createMetrics();
  const tokens = createTokenProvider({
    store: createMemoryStore(),
    log: pino({ level: 'silent' }),
    metrics,
    api: 'wecom',
    endpoint: 'gettoken',
    appId: CORP,
    secret: SECRET,
    fetchToken: () => fetchWecomToken(httpClient, CORP, SECRET),
  });
  return { httpClient, api: createApiClient({ http: httpClient, tokens, metrics }) };
}

const send = { touser: 'wmUser', open_kfid: OPEN_KFID, msgid: 'm1', msgtype: 'text', text: { content: 'hi' } };

describe('WECHAT_API_PROXY', () => {
  let dir: string;
  let ca: Buffer;
  let api: Awaited<ReturnType<typeof startHttpsApi>>;
  let proxy: CountingProxy;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-proxy-test-'));
    execFileSync('openssl', ['req', '-x509', '-nodes', '-newkey', 'rsa:2048', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(join(dir, 'cert.pem'));
    api = await startHttpsApi(readFileSync(join(dir, 'key.pem')), ca);
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy?.close();
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    proxy.connects.length = 0;
    proxy.forwards.length = 0;
    api.seen.length = 0;
    proxy.requireAuth(false);
  });

  it('https target: the token fetch and a kf send go through one CONNECT tunnel (keep-alive), TLS end to end', async () => {
    const { api: client } = kfClient(api.url, { proxy: proxy.url, tls: { ca } });
    await expect(client.post('kf/send_msg', '/cgi-bin/kf/send_msg', send)).resolves.toMatchObject({ msgid: 'out-1' });
    await expect(client.post('kf/send_msg', '/cgi-bin/kf/send_msg', { ...send, msgid: 'm2' })).resolves.toMatchObject({ msgid: 'out-1' });
    expect(api.seen).toEqual(['/cgi-bin/gettoken', '/cgi-bin/kf/send_msg', '/cgi-bin/kf/send_msg']);
    // Three calls, one tunnel: the proxy saw only the CONNECT (never a URL, the token or the secret).
    expect(proxy.connects).toEqual([api.hostPort]);
    expect(proxy.forwards).toEqual([]);
  });

  it('without the proxy the same calls go direct', async () => {
    const { api: client } = kfClient(api.url, { tls: { ca } });
    await expect(client.post('kf/send_msg', '/cgi-bin/kf/send_msg', send)).resolves.toMatchObject({ msgid: 'out-1' });
    expect(api.seen).toEqual(['/cgi-bin/gettoken', '/cgi-bin/kf/send_msg']);
    expect(proxy.connects).toEqual([]);
    expect(proxy.forwards).toEqual([]);
  });

  it('the tunnel still checks the origin certificate (no ca: refused, as a transport failure)', async () => {
    const { httpClient } = kfClient(api.url, { proxy: proxy.url });
    const err = await fetchWecomToken(httpClient, CORP, SECRET).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WechatApiError);
    expect((err as WechatApiError).message).toMatch(/transport failure/);
    expect(proxy.connects).toEqual([api.hostPort]);
    expect(api.seen).toEqual([]);
  });

  it('proxy credentials: sent on CONNECT; a refusal (407) names no credential', async () => {
    proxy.requireAuth(true);
    const { httpClient } = kfClient(api.url, { proxy: proxy.authUrl, tls: { ca } });
    await expect(fetchWecomToken(httpClient, CORP, SECRET)).resolves.toMatchObject({ access_token: 'TOKEN-1' });
    const wrong = kfClient(api.url, { proxy: proxy.url.replace('//', '//bridge:nope@'), tls: { ca } }).httpClient;
    const err = (await fetchWecomToken(wrong, CORP, SECRET).catch((e: unknown) => e)) as WechatApiError;
    expect(err).toBeInstanceOf(WechatApiError);
    expect(err.status).toBe(407);
    expect(`${err.message} ${JSON.stringify(err)}`).not.toMatch(/nope|p@ss|proxy-test-secret/);
  });

  it('plain-http target: forward-proxied with the absolute URL (credentials as Proxy-Authorization), no CONNECT', async () => {
    proxy.requireAuth(true);
    const plain = http.createServer((req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ errcode: 0, errmsg: 'ok', access_token: 'PLAIN', expires_in: 7200 }));
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const origin = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      const httpClient = createApiHttp(origin, 5000, { proxy: proxy.authUrl });
      await expect(fetchWecomToken(httpClient, CORP, SECRET)).resolves.toMatchObject({ access_token: 'PLAIN' });
      expect(proxy.forwards).toHaveLength(1);
      expect(proxy.forwards[0]).toMatch(new RegExp(`^${origin}/cgi-bin/gettoken\\?`));
      expect(proxy.connects).toEqual([]);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  it('WECHAT_API_PROXY is validated and never echoed in a configuration error', () => {
    expect(loadConfig({ WECHAT_API_PROXY: 'http://u:pw@10.0.0.5:3128' }).wechatApiProxy).toBe('http://u:pw@10.0.0.5:3128');
    expect(loadConfig({}).wechatApiProxy).toBeNull();
    for (const bad of ['socks5://u:secretpw@10.0.0.5:1080', 'u:secretpw@10.0.0.5:3128']) {
      const err = (() => {
        try {
          loadConfig({ WECHAT_API_PROXY: bad });
        } catch (e) {
          return e as Error;
        }
        return null;
      })();
      expect(err?.message).toMatch(/WECHAT_API_PROXY: must be an http:\/\/ or https:\/\/ proxy URL/);
      expect(err?.message).not.toMatch(/secretpw/);
    }
  });

  it('end to end: with WECHAT_API_PROXY the server answers a kf customer and every WeCom call went through the proxy', async () => {
    const h = await startHarness({ env: { WECHAT_API_PROXY: proxy.url } });
    try {
      await h.customerSays('wmProxyUser', 'through the proxy');
      await h.fake.waitFor(() => textsTo(h.fake, 'wmProxyUser').length === 1);
      expect(textsTo(h.fake, 'wmProxyUser')).toEqual(['through the proxy']);
      const paths = proxy.forwards.map((u) => new URL(u).pathname);
      expect(paths).toEqual(expect.arrayContaining(['/cgi-bin/gettoken', '/cgi-bin/kf/sync_msg', '/cgi-bin/kf/send_msg']));
      // Every call the fake answered came through the proxy.
      expect(proxy.forwards.length).toBe(h.fake.calls.length);
      expect(proxy.forwards.every((u) => u.startsWith(`${h.fake.url}/`))).toBe(true);
      expect(h.logs.raw.join('\n')).not.toContain(CREDS.kfSecret);
    } finally {
      await h.close();
    }
  });

  it('end to end, Official Account (active mode): stable_token and custom/send went through the proxy', async () => {
    const h = await startMpHarness({ env: { WECHAT_API_PROXY: proxy.url } });
    try {
      await h.deliver(textMsg(MP, 'oProxyUser', 'via proxy'), 'safe');
      await h.api.waitFor(() => h.api.sent.length === 1);
      expect(h.api.sent[0]).toMatchObject({ touser: 'oProxyUser', content: 'via proxy' });
      const paths = proxy.forwards.map((u) => new URL(u).pathname);
      expect(paths).toEqual(expect.arrayContaining(['/cgi-bin/stable_token', '/cgi-bin/message/custom/send']));
      expect(proxy.forwards.length).toBe(h.api.calls.length);
      expect(h.logs.raw.join('\n')).not.toContain(MP_SECRET);
    } finally {
      await h.close();
    }
  });
});
