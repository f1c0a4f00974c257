import type { AxiosInstance } from 'axios';
import { WechatApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { requestJson, type WechatEnvelope } from './http.js';
import type { FetchedToken, TokenProvider } from './token.js';

/** errcodes that mean "this access_token is no longer good": invalid secret/stale (40001), invalid (40014), expired (42001). */
const TOKEN_ERRCODES = new Set([40001, 40014, 42001]);

/** A WeCom API client that adds `access_token` and heals a revoked one. */
export interface WecomApi {
  /**
   * POSTs `body` to `path` (e.g. `/cgi-bin/kf/send_msg`) with the current access_token. On 40001/40014/42001 it
   * drops the token, fetches a new one and retries once (wecom-kf-protocol.md §5.4).
   * @param api name for metrics/logs, e.g. `kf/send_msg`
   * @throws WechatApiError (counted in `bridge_wechat_errors_total{api,errcode}`)
   */
  post<T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal): Promise<T>;
}

/**
 * @param deps.http an instance from `createApiHttp(WECOM_API_BASE_URL)`
 * @param deps.tokens the shared access_token of the app whose secret is used (the 微信客服 secret for kf)
 */
export function createWecomApi(deps: { http: AxiosInstance; tokens: TokenProvider; metrics: Metrics }): WecomApi {
  const once = async <T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal) => {
    const token = await deps.tokens.get();
    try {
      return await requestJson<T>(deps.http, api, { method: 'POST', path, params: { access_token: token }, body, signal });
    } catch (e) {
      if (e instanceof WechatApiError && e.errcode !== null && TOKEN_ERRCODES.has(e.errcode)) {
        await deps.tokens.invalidate(token);
      }
      throw e;
    }
  };
  return {
    post: async <T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal) => {
      try {
        try {
          return await once<T>(api, path, body, signal);
        } catch (e) {
          if (!(e instanceof WechatApiError && e.errcode !== null && TOKEN_ERRCODES.has(e.errcode))) throw e;
          deps.metrics.wechatErrors.inc({ api, errcode: String(e.errcode) });
          return await once<T>(api, path, body, signal);
        }
      } catch (e) {
        if (e instanceof WechatApiError) deps.metrics.wechatErrors.inc({ api, errcode: String(e.errcode ?? e.status ?? 'network') });
        throw e;
      }
    },
  };
}

/**
 * `GET /cgi-bin/gettoken?corpid=…&corpsecret=…` (wecom-kf-protocol.md §5.4).
 * @returns access_token and expires_in (seconds)
 * @throws WechatApiError e.g. 40001 wrong secret, 40013 wrong corpid
 */
export async function fetchWecomToken(http: AxiosInstance, corpId: string, secret: string): Promise<FetchedToken> {
  const res = await requestJson<WechatEnvelope & Partial<FetchedToken>>(http, 'gettoken', {
    method: 'GET',
    path: '/cgi-bin/gettoken',
    params: { corpid: corpId, corpsecret: secret },
  });
  if (typeof res.access_token !== 'string' || !res.access_token) {
    throw new WechatApiError('gettoken', null, true, 'gettoken: answer has no access_token');
  }
  return { access_token: res.access_token, expires_in: Number(res.expires_in ?? 7200) };
}
