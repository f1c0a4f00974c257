import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import axios, { type AxiosInstance, type AxiosProxyConfig, isAxiosError } from 'axios';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { WechatApiError } from '../errors.js';

/** errcodes after which the same call may succeed later: system busy, daily and per-minute limits, concurrency limit. */
const RETRYABLE_ERRCODES = new Set([-1, 45009, 45011, 45033]);

/** The platform's JSON answer envelope. */
export interface WechatEnvelope {
  errcode?: number;
  errmsg?: string;
}

/** Options of {@link createApiHttp}. */
export interface ApiHttpOptions {
  /**
   * WECHAT_API_PROXY: `http(s)://[user:pass@]host:port`. https targets are tunnelled through it with CONNECT (TLS
   * stays end to end), http targets (tests, private deployments) go to it as plain forward-proxy requests.
   * null/undefined: direct (and axios's own HTTP(S)_PROXY handling stays as it was).
   */
  proxy?: string | null;
  /** extra trust for https origins (tests: a self-signed certificate); the system CAs otherwise */
  tls?: { ca?: string | Buffer };
}

/**
 * An axios instance for one platform API origin, with keep-alive sockets (callbacks → API calls are bursty)
 * and a per-request timeout.
 * @param baseUrl e.g. https://qyapi.weixin.qq.com (tests: a fake on 127.0.0.1)
 * @param timeoutMs per request, ms
 * @param o.proxy every request of the instance goes through this proxy (WECHAT_API_PROXY)
 */
export function createApiHttp(baseUrl: string, timeoutMs = 10_000, o: ApiHttpOptions = {}): AxiosInstance {
  const ca = o.tls?.ca;
  const instance = axios.create({
    baseURL: baseUrl,
    timeout: timeoutMs,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: o.proxy ? new TunnelAgent(o.proxy, ca) : new https.Agent({ keepAlive: true, maxSockets: 64, ...(ca ? { ca } : {}) }),
    // With a proxy: axios's own proxy handling off (it would read HTTP(S)_PROXY from the environment and install a
    // tunnel of its own in front of our agent); http targets get it back per request below.
    ...(o.proxy ? { proxy: false as const } : {}),
    // Non-2xx answers are read and translated by `requestJson`, not thrown as axios errors.
    validateStatus: () => true,
    // The platform APIs never redirect; without redirects axios also skips follow-redirects' per-request wrapper.
    maxRedirects: 0,
    maxContentLength: 16 * 1024 * 1024,
    headers: { 'content-type': 'application/json' },
  });
  if (o.proxy) {
    const forward = forwardProxy(o.proxy);
    instance.interceptors.request.use((config) => {
      // A plain-http target cannot use a CONNECT tunnel (proxies allow CONNECT to 443 only, by default): the request
      // goes to the proxy with the absolute URL instead. The target is the request's absolute URL or the base URL.
      const target = config.url && /^[a-z][a-z0-9+.-]*:\/\//i.test(config.url) ? config.url : (config.baseURL ?? baseUrl);
      if (/^http:/i.test(target)) config.proxy = forward;
      return config;
    });
  }
  return instance;
}

/**
 * The CONNECT tunnel of https requests (keep-alive: one tunnel carries many calls). TLS to the origin is end to end:
 * the proxy sees only `CONNECT host:443`. `ca` is added to the origin's TLS options after the CONNECT
 * (HttpsProxyAgent takes those from the request, where axios puts none); an origin given as an IP address is
 * checked against that address (HttpsProxyAgent drops `host` from the TLS options, and Node would check the
 * certificate against `localhost` then).
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly ca: string | Buffer | undefined,
  ) {
    super(proxy, { keepAlive: true, maxSockets: 64 });
  }
  override connect(req: http.ClientRequest, opts: ConnectOpts): ReturnType<HttpsProxyAgent<string>['connect']> {
    if (!opts.secureEndpoint) return super.connect(req, opts);
    const host = opts.host;
    return super.connect(req, {
      ...opts,
      ...(this.ca ? { ca: this.ca } : {}),
      ...(host && isIP(host) ? { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) } : {}),
    });
  }
}

type ConnectOpts = Parameters<HttpsProxyAgent<string>['connect']>[1];

/** axios's forward-proxy setting for `proxyUrl` (credentials become Proxy-Authorization). */
function forwardProxy(proxyUrl: string): AxiosProxyConfig {
  const u = new URL(proxyUrl);
  const protocol = u.protocol.replace(/:$/, '');
  return {
    protocol,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : protocol === 'https' ? 443 : 80,
    ...(u.username || u.password ? { auth: { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } } : {}),
  };
}

/**
 * One JSON call, translated at the edge: the result has errcode 0 (or none), anything else becomes a
 * WechatApiError that carries no URL, so `access_token` and secrets cannot reach a log through it.
 * @param api a name for logs and metrics, e.g. `kf/sync_msg`
 * @param params query parameters (`access_token` goes here, never into `path`)
 * @throws WechatApiError errcode ≠ 0 (retryable for -1/45009/45011/45033), HTTP ≥ 400 or a transport failure
 *   (errcode null; retryable for 5xx, 429 and network errors)
 */
export async function requestJson<T extends WechatEnvelope>(
  httpClient: AxiosInstance,
  api: string,
  req: { method: 'GET' | 'POST'; path: string; params?: Record<string, string>; body?: unknown; signal?: AbortSignal },
): Promise<T> {
  const { status, data } = await send(httpClient, api, { ...req, responseType: 'json' });
  return checkEnvelope<T>(api, status, data);
}

/** A downloaded media file. */
export interface MediaFile {
  data: Buffer;
  /** the Content-Type WeCom/WeChat gave (not trusted for images: sniff the bytes) */
  contentType: string | null;
  /** from Content-Disposition, when given */
  filename: string | null;
}

/**
 * Downloads temporary media (`GET /cgi-bin/media/get`, docs/protocols.md kf §5.3, OA §8). An
 * error arrives as a JSON body with HTTP 200, so a JSON content type is read as an envelope.
 * @param maxBytes larger files are refused (bytes)
 * @throws WechatApiError as {@link requestJson}; a file over `maxBytes` is a non-retryable one (errcode null, status 413)
 */
export async function requestMedia(
  httpClient: AxiosInstance,
  api: string,
  req: { path: string; params: Record<string, string>; maxBytes: number; signal?: AbortSignal },
): Promise<MediaFile> {
  const { status, data, headers } = await send(httpClient, api, {
    method: 'GET',
    path: req.path,
    params: req.params,
    signal: req.signal,
    responseType: 'arraybuffer',
    maxContentLength: req.maxBytes,
  });
  const contentType = typeof headers['content-type'] === 'string' ? headers['content-type'] : null;
  const bytes = Buffer.from(data as ArrayBuffer);
  if (status >= 400) checkEnvelope(api, status, null);
  // An error is a JSON envelope with a non-zero errcode (sent as JSON or text/plain); a customer's .txt or .json
  // file is text too, so only an envelope counts as an error.
  if (/json|text\/plain/i.test(contentType ?? '') && bytes.length < 4096) {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      /* not JSON: the file itself */
    }
    if (parsed && typeof parsed === 'object' && typeof (parsed as WechatEnvelope).errcode === 'number' && (parsed as WechatEnvelope).errcode !== 0) {
      checkEnvelope(api, status, parsed);
    }
  }
  return { data: bytes, contentType, filename: filenameOf(headers['content-disposition']) };
}

function filenameOf(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    } catch {
      /* fall through to the plain form */
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain?.[1]?.trim() || null;
}

async function send(
  httpClient: AxiosInstance,
  api: string,
  req: {
    method: 'GET' | 'POST';
    path: string;
    params?: Record<string, string>;
    body?: unknown;
    signal?: AbortSignal;
    responseType: 'json' | 'arraybuffer';
    maxContentLength?: number;
  },
): Promise<{ status: number; data: unknown; headers: Record<string, unknown> }> {
  try {
    const res = await httpClient.request({
      method: req.method,
      url: req.path,
      params: req.params,
      data: req.body,
      signal: req.signal,
      // The instance's JSON content type would make axios serialise a FormData as JSON; this one makes it stream
      // the multipart body with its boundary.
      ...(req.body instanceof FormData ? { headers: { 'content-type': 'multipart/form-data' } } : {}),
      responseType: req.responseType,
      ...(req.maxContentLength ? { maxContentLength: req.maxContentLength } : {}),
    });
    return { status: res.status, data: res.data as unknown, headers: res.headers as Record<string, unknown> };
  } catch (e) {
    const code = isAxiosError(e) ? (e.code ?? 'ERR') : 'ERR';
    if (code === 'ERR_BAD_RESPONSE' && isAxiosError(e) && /maxContentLength/.test(e.message)) {
      throw new WechatApiError(api, null, false, `${api}: file larger than allowed`, 413);
    }
    // Only the code: the axios error object holds the URL with access_token/corpsecret.
    throw new WechatApiError(api, null, code !== 'ERR_CANCELED', `${api}: transport failure ${code}`);
  }
}

function checkEnvelope<T extends WechatEnvelope>(api: string, status: number, data: unknown): T {
  if (status >= 400) {
    throw new WechatApiError(api, null, status >= 500 || status === 429, `${api}: HTTP ${status}`, status);
  }
  if (!data || typeof data !== 'object') {
    throw new WechatApiError(api, null, true, `${api}: answer is not JSON`, status);
  }
  const body = data as T;
  const errcode = typeof body.errcode === 'number' ? body.errcode : 0;
  if (errcode !== 0) {
    const errmsg = String(body.errmsg ?? '').slice(0, 200);
    throw new WechatApiError(api, errcode, RETRYABLE_ERRCODES.has(errcode), `${api}: errcode ${errcode} ${errmsg}`);
  }
  return body;
}
