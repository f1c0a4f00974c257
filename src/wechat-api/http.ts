import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { WechatApiError } from '../errors.js';

/** errcodes after which the same call may succeed later: system busy, daily and per-minute limits, concurrency limit. */
const RETRYABLE_ERRCODES = new Set([-1, 45009, 45011, 45033]);

/** The platform's JSON answer envelope. */
export interface WechatEnvelope {
  errcode?: number;
  errmsg?: string;
}

/**
 * An axios instance for one platform API origin, with keep-alive sockets (callbacks → API calls are bursty)
 * and a per-request timeout.
 * @param baseUrl e.g. https://qyapi.weixin.qq.com (tests: a fake on 127.0.0.1)
 * @param timeoutMs per request, ms
 */
export function createApiHttp(baseUrl: string, timeoutMs = 10_000): AxiosInstance {
  return axios.create({
    baseURL: baseUrl,
    timeout: timeoutMs,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
    // Non-2xx answers are read and translated by `requestJson`, not thrown as axios errors.
    validateStatus: () => true,
    maxContentLength: 16 * 1024 * 1024,
    headers: { 'content-type': 'application/json' },
  });
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
