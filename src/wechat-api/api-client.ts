import type { AxiosInstance } from 'axios';
import { WechatApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { requestJson, type WechatEnvelope } from './http.js';
import type { TokenProvider } from './token.js';

/** errcodes that mean "this access_token is no longer good": invalid secret/stale (40001), invalid (40014), expired (42001). */
const TOKEN_ERRCODES = new Set([40001, 40014, 42001]);

/** A WeCom or Official Account API client that adds `access_token` and heals a revoked one. */
export interface ApiClient {
  /**
   * POSTs `body` to `path` (e.g. `/cgi-bin/kf/send_msg`, `/cgi-bin/message/custom/send`) with the current access_token. On 40001/40014/42001 it
   * drops the token, fetches a new one and retries once (wecom-kf-protocol.md §5.4,
   * wechat-mp-protocol.md §7).
   * @param api name for metrics/logs, e.g. `kf/send_msg`
   * @throws WechatApiError (counted in `bridge_wechat_errors_total{api,errcode}`)
   */
  post<T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal): Promise<T>;
}

/**
 * Both platforms take `access_token` as a query parameter and report a bad one with the same errcodes.
 * @param deps.http an instance from `createApiHttp(WECOM_API_BASE_URL | WECHAT_MP_API_BASE_URL)`
 * @param deps.tokens the shared access_token of the app whose secret is used (the 微信客服 secret for kf)
 */
export function createApiClient(deps: { http: AxiosInstance; tokens: TokenProvider; metrics: Metrics }): ApiClient {
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
          try {
            return await once<T>(api, path, body, signal);
          } catch (again) {
            // Refused again right after a fresh token: a token race or a platform hiccup, not a verdict on this
            // message. Retryable, so the job backs off and tries later instead of dropping the reply.
            if (again instanceof WechatApiError && again.errcode !== null && TOKEN_ERRCODES.has(again.errcode)) {
              throw new WechatApiError(api, again.errcode, true, again.message, again.status);
            }
            throw again;
          }
        }
      } catch (e) {
        if (e instanceof WechatApiError) deps.metrics.wechatErrors.inc({ api, errcode: String(e.errcode ?? e.status ?? 'network') });
        throw e;
      }
    },
  };
}
