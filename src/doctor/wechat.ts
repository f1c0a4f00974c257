import type { AxiosInstance } from 'axios';
import type { Config } from '../config.js';
import { WechatApiError, maskCredentials } from '../errors.js';
import { createApiHttp } from '../wechat-api/http.js';
import { fetchStableToken } from '../wechat-api/mp-token.js';
import { fetchWecomToken } from '../wechat-api/wecom-token.js';
import { fail, messageOf, pass, type ClockSample, type DoctorResult } from './types.js';

/** What the token checks need besides the configuration. */
export interface TokenCheckOptions {
  now: () => number;
  timeoutMs: number;
  tls?: { ca?: string | Buffer };
  /** receives the platform's clock (its `Date` header) */
  onClock?: (sample: ClockSample) => void;
}

const PROXY_HINT = 'or set WECHAT_API_PROXY to a proxy with a fixed IP that is listed';

/**
 * kf: `gettoken` with WECOM_CORP_ID / WECOM_KF_SECRET, through the same axios instance the server builds (so
 * WECHAT_API_PROXY applies). Fetching a token does not invalidate the one a running server holds.
 */
export async function checkKfToken(config: Config, o: TokenCheckOptions): Promise<DoctorResult | null> {
  const kf = config.kf;
  if (!kf) return null;
  const name = 'kf token (WeCom gettoken)';
  const http = apiHttp(kf.apiBaseUrl, config, o, 'WeCom API');
  try {
    await fetchWecomToken(http, kf.corpId, kf.kfSecret);
    return pass(name, `an access_token for corp ${kf.corpId} from ${where(kf.apiBaseUrl, config)}`);
  } catch (e) {
    if (!(e instanceof WechatApiError) || e.errcode === null) return transportFailure(name, e, kf.apiBaseUrl, 'WECOM_API_BASE_URL', config);
    const said = `errcode ${e.errcode} (${errmsgOf(e)})`;
    switch (e.errcode) {
      case 60020:
        return fail(
          name,
          `${said}: the server's egress IP is not in WeCom's trusted-IP list (企业可信IP)`,
          `add the IP WeCom names above to the trusted IPs of the 微信客服 app in the admin console, ${PROXY_HINT}`,
        );
      case 40013:
      case 41002:
        return fail(name, `${said}: WeCom does not know this CorpID`, 'set WECOM_CORP_ID to the 企业ID from 我的企业 → 企业信息 in the admin console');
      case 40001:
      case 40091:
      case 41004:
        return fail(
          name,
          `${said}: the Secret is wrong for this CorpID`,
          'set WECOM_KF_SECRET to the 微信客服 Secret (微信客服 → API → Secret; not another app\'s), and check WECOM_CORP_ID',
        );
      default:
        return fail(name, said, 'look the errcode up in docs/protocols.md (kf §7) and WeCom\'s 全局错误码 page');
    }
  }
}

/**
 * OA: `stable_token` (not forced: the token a running server holds stays valid) with WECHAT_MP_APP_ID /
 * WECHAT_MP_APP_SECRET, through the server's axios instance (WECHAT_API_PROXY applies).
 */
export async function checkMpToken(config: Config, o: TokenCheckOptions): Promise<DoctorResult | null> {
  const mp = config.mp;
  if (!mp) return null;
  const name = 'OA token (WeChat stable_token)';
  if (!mp.appSecret) return pass(name, 'passive mode without an AppSecret: the server makes no API call, nothing to check');
  const http = apiHttp(mp.apiBaseUrl, config, o, 'WeChat API');
  try {
    await fetchStableToken(http, mp.appId, mp.appSecret, false);
    return pass(name, `an access_token for ${mp.appId} from ${where(mp.apiBaseUrl, config)}`);
  } catch (e) {
    if (!(e instanceof WechatApiError) || e.errcode === null) return transportFailure(name, e, mp.apiBaseUrl, 'WECHAT_MP_API_BASE_URL', config);
    const said = `errcode ${e.errcode} (${errmsgOf(e)})`;
    switch (e.errcode) {
      case 40164:
      case 89503:
        return fail(
          name,
          `${said}: the server's egress IP is not on the Official Account's IP whitelist (IP白名单)`,
          `add the IP WeChat names above under 设置与开发 → 基本配置 → IP白名单, ${PROXY_HINT}`,
        );
      case 40013:
        return fail(name, `${said}: WeChat does not know this AppID`, 'set WECHAT_MP_APP_ID to the AppID from 设置与开发 → 基本配置');
      case 40001:
      case 40125:
        return fail(
          name,
          `${said}: the AppSecret is wrong for this AppID`,
          'set WECHAT_MP_APP_SECRET to the AppSecret (设置与开发 → 基本配置 → 开发者密码; reset it there if nobody has it)',
        );
      default:
        return fail(name, said, 'look the errcode up in docs/protocols.md (OA §7) and WeChat\'s 全局返回码 page');
    }
  }
}

function apiHttp(baseUrl: string, config: Config, o: TokenCheckOptions, source: string): AxiosInstance {
  const http = createApiHttp(baseUrl, o.timeoutMs, { proxy: config.wechatApiProxy, ...(o.tls ? { tls: o.tls } : {}) });
  http.interceptors.response.use((res) => {
    const date = res.headers.date as unknown;
    const remoteMs = typeof date === 'string' ? Date.parse(date) : NaN;
    if (Number.isFinite(remoteMs)) o.onClock?.({ source: `${source} Date header`, remoteMs, localMs: o.now(), resolutionMs: 1000 });
    return res;
  });
  return http;
}

function where(baseUrl: string, config: Config): string {
  return `${maskCredentials(baseUrl)}${config.wechatApiProxy ? ` through WECHAT_API_PROXY ${maskCredentials(config.wechatApiProxy)}` : ''}`;
}

function transportFailure(name: string, e: unknown, baseUrl: string, baseVar: string, config: Config): DoctorResult {
  const proxy = config.wechatApiProxy;
  if (e instanceof WechatApiError && e.status === 407) {
    return fail(name, `the proxy ${maskCredentials(proxy ?? '')} answered 407 (it wants credentials)`, 'put the right user:password in WECHAT_API_PROXY (http://user:password@host:port)');
  }
  if (e instanceof WechatApiError && e.status !== null) {
    return fail(name, `HTTP ${e.status} from ${where(baseUrl, config)}`, `check ${baseVar}${proxy ? ' and WECHAT_API_PROXY' : ''}`);
  }
  return fail(
    name,
    `cannot reach ${where(baseUrl, config)}: ${messageOf(e)}`,
    proxy
      ? `check that the proxy in WECHAT_API_PROXY runs and may reach ${hostPort(baseUrl)}, and ${baseVar}`
      : `check DNS, the firewall and outbound access to ${hostPort(baseUrl)}, and ${baseVar}`,
  );
}

function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
  } catch {
    return url;
  }
}

/** The platform's errmsg from the error's message (`<api>: errcode <n> <errmsg>`). */
function errmsgOf(e: WechatApiError): string {
  const m = /errcode -?\d+ ?(.*)$/s.exec(e.message);
  return (m?.[1] ?? '').trim().slice(0, 200) || 'no errmsg';
}
