import type { AxiosInstance } from 'axios';
import { WechatApiError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { requestJson, requestMedia, type MediaFile, type WechatEnvelope } from './http.js';
import type { TokenProvider } from './token.js';

/** errcodes that mean "this access_token is no longer good": invalid secret/stale (40001), invalid (40014), expired (42001). */
const TOKEN_ERRCODES = new Set([40001, 40014, 42001]);

/** A WeCom or Official Account API client that adds `access_token` and heals a revoked one. */
export interface ApiClient {
  /**
   * POSTs `body` to `path` (e.g. `/cgi-bin/kf/send_msg`, `/cgi-bin/message/custom/send`) with the current access_token. On 40001/40014/42001 it
   * drops the token, fetches a new one and retries once (docs/protocols.md kf §5.4, OA §7).
   * @param api name for metrics/logs, e.g. `kf/send_msg`
   * @throws WechatApiError (counted in `bridge_wechat_errors_total{api,errcode}`)
   */
  post<T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal): Promise<T>;
  /**
   * Downloads temporary media: `GET /cgi-bin/media/get?media_id=…` (same token healing as `post`).
   * @param maxBytes larger files are refused (bytes)
   * @throws WechatApiError (errcode 40007 for an unknown or expired media_id; status 413 when over `maxBytes`)
   */
  getMedia(mediaId: string, maxBytes: number, signal?: AbortSignal): Promise<MediaFile>;
  /**
   * Uploads temporary media (`POST /cgi-bin/media/upload?type=…`, multipart part `media`), valid 3 days.
   * @returns the `media_id`
   * @throws WechatApiError
   */
  uploadMedia(type: 'image' | 'voice' | 'video' | 'file', file: { data: Buffer; mime: string; name: string }, signal?: AbortSignal): Promise<string>;
}

/**
 * Both platforms take `access_token` as a query parameter and report a bad one with the same errcodes.
 * @param deps.http an instance from `createApiHttp(WECOM_API_BASE_URL | WECHAT_MP_API_BASE_URL)`
 * @param deps.tokens the shared access_token of the app whose secret is used (the 微信客服 secret for kf)
 */
export function createApiClient(deps: { http: AxiosInstance; tokens: TokenProvider; metrics: Metrics }): ApiClient {
  const once = async <T>(call: (accessToken: string) => Promise<T>) => {
    const token = await deps.tokens.get();
    try {
      return await call(token);
    } catch (e) {
      if (e instanceof WechatApiError && e.errcode !== null && TOKEN_ERRCODES.has(e.errcode)) {
        await deps.tokens.invalidate(token);
      }
      throw e;
    }
  };
  const healed = async <T>(api: string, call: (accessToken: string) => Promise<T>): Promise<T> => {
    try {
      try {
        return await once<T>(call);
      } catch (e) {
        if (!(e instanceof WechatApiError && e.errcode !== null && TOKEN_ERRCODES.has(e.errcode))) throw e;
        deps.metrics.wechatErrors.inc({ api, errcode: String(e.errcode) });
        try {
          return await once<T>(call);
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
      // The failing call's own name: a token error is `gettoken`/`stable_token` (an IP-whitelist refusal), not the send.
      if (e instanceof WechatApiError) deps.metrics.wechatErrors.inc({ api: e.api, errcode: String(e.errcode ?? e.status ?? 'network') });
      throw e;
    }
  };
  return {
    post: <T extends WechatEnvelope>(api: string, path: string, body: unknown, signal?: AbortSignal) =>
      healed(api, (access_token) => requestJson<T>(deps.http, api, { method: 'POST', path, params: { access_token }, body, signal })),
    getMedia: (mediaId, maxBytes, signal) =>
      healed('media/get', (access_token) =>
        requestMedia(deps.http, 'media/get', { path: '/cgi-bin/media/get', params: { access_token, media_id: mediaId }, maxBytes, signal }),
      ),
    uploadMedia: async (type, file, signal) => {
      const res = await healed('media/upload', (access_token) => {
        // A fresh form per attempt: a body stream cannot be sent twice.
        const form = new FormData();
        form.append('media', new Blob([file.data], { type: file.mime }), file.name);
        return requestJson<WechatEnvelope & { media_id?: string }>(deps.http, 'media/upload', {
          method: 'POST',
          path: '/cgi-bin/media/upload',
          params: { access_token, type },
          body: form,
          signal,
        });
      });
      if (typeof res.media_id !== 'string' || res.media_id === '') throw new WechatApiError('media/upload', null, true, 'media/upload: no media_id');
      return res.media_id;
    },
  };
}
