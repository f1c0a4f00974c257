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
  let status: number;
  let data: unknown;
  try {
    const res = await httpClient.request({
      method: req.method,
      url: req.path,
      params: req.params,
      data: req.body,
      signal: req.signal,
      responseType: 'json',
    });
    status = res.status;
    data = res.data;
  } catch (e) {
    const code = isAxiosError(e) ? (e.code ?? 'ERR') : 'ERR';
    // Only the code: the axios error object holds the URL with access_token/corpsecret.
    throw new WechatApiError(api, null, code !== 'ERR_CANCELED', `${api}: transport failure ${code}`);
  }
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
