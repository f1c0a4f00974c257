import type { AxiosInstance } from 'axios';
import { WechatApiError } from '../errors.js';
import { requestJson, type WechatEnvelope } from './http.js';
import type { FetchedToken } from './token.js';

/**
 * `POST /cgi-bin/stable_token` with `{grant_type: "client_credential", appid, secret, force_refresh}`
 * (docs/protocols.md OA §7). Preferred over the classic `GET /cgi-bin/token`, which invalidates the previous
 * token on every call, so two processes (or two deployments) sharing an AppID would keep knocking each other's
 * token out; a normal stable_token call hands every caller the same current token.
 * An origin that answers 404 for stable_token gets the classic `GET /cgi-bin/token` instead.
 * @param forceRefresh only after the platform refused the current token (allowed 20 times a day, 30 s apart)
 * @returns access_token and expires_in (seconds)
 * @throws WechatApiError e.g. 40013 wrong AppID, 40001/40125 wrong AppSecret, 40164 IP not whitelisted
 */
export async function fetchStableToken(
  http: AxiosInstance,
  appId: string,
  secret: string,
  forceRefresh: boolean,
): Promise<FetchedToken> {
  let res: WechatEnvelope & Partial<FetchedToken>;
  try {
    res = await requestJson(http, 'stable_token', {
      method: 'POST',
      path: '/cgi-bin/stable_token',
      body: { grant_type: 'client_credential', appid: appId, secret, force_refresh: forceRefresh },
    });
  } catch (e) {
    // Some API relays (WECHAT_MP_API_BASE_URL pointing at a proxy) only forward the classic call.
    if (!(e instanceof WechatApiError && e.status === 404)) throw e;
    res = await requestJson(http, 'token', {
      method: 'GET',
      path: '/cgi-bin/token',
      params: { grant_type: 'client_credential', appid: appId, secret },
    });
  }
  if (typeof res.access_token !== 'string' || !res.access_token) {
    throw new WechatApiError('stable_token', null, true, 'stable_token: answer has no access_token');
  }
  return { access_token: res.access_token, expires_in: Number(res.expires_in ?? 7200) };
}
