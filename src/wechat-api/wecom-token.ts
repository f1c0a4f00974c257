import type { AxiosInstance } from 'axios';
import { WechatApiError } from '../errors.js';
import { requestJson, type WechatEnvelope } from './http.js';
import type { FetchedToken } from './token.js';

/**
 * `GET /cgi-bin/gettoken?corpid=…&corpsecret=…` (docs/protocols.md kf §5.4).
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
