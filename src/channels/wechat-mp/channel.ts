import type { MessageRecorder } from '../../pipeline/recorder.js';
import type { Logger } from 'pino';
import type { Config, MpConfig } from '../../config.js';
import { parseEncodingAesKey } from '../../crypto/wxbizmsgcrypt.js';
import { createReplayGuard } from '../../http/replay-guard.js';
import type { Metrics } from '../../metrics.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { Store } from '../../store/types.js';
import { createApiClient, type ApiClient } from '../../wechat-api/api-client.js';
import { createApiHttp } from '../../wechat-api/http.js';
import { fetchStableToken } from '../../wechat-api/mp-token.js';
import { createTokenProvider } from '../../wechat-api/token.js';
import { createAccountMode } from './account-mode.js';
import type { MediaTools } from '../../pipeline/media-tools.js';
import { createMpJobHandler } from './handler.js';
import type { MpRouteDeps } from './routes.js';
import { createSlotWatch } from './slots.js';

/**
 * Wires the Official Account channel: its API client (none in passive mode: no call is made then), the job
 * handler and what its routes need. Called by deps.ts only.
 */
export function createMpChannel(
  config: Config,
  mp: MpConfig,
  c: { store: Store; log: Logger; metrics: Metrics; agents: AgentRouter; media: MediaTools; recorder?: MessageRecorder },
): { handler: ReturnType<typeof createMpJobHandler>; routes: Omit<MpRouteDeps, 'jobs'>; api: ApiClient | null } {
  const log = c.log.child({ channel: 'mp' });
  const secret = mp.appSecret;
  // Media downloads work for any account with its AppSecret; sending through the API only outside passive mode.
  const apiClient = secret ? createMpApi(mp, config.wechatApiProxy, secret, c.store, log, c.metrics) : null;
  const api = mp.replyMode !== 'passive' ? apiClient : null;
  const mode = createAccountMode({ store: c.store, appId: mp.appId, mode: mp.replyMode, metrics: c.metrics, log });
  const slots = createSlotWatch(c.store);
  const timings = { autoHoldMs: mp.autoHoldMs, passiveHoldMs: mp.passiveHoldMs, passiveLastMs: mp.passiveLastMs };
  const handler = createMpJobHandler({
    api,
    mediaApi: apiClient,
    media: c.media,
    agents: c.agents,
    replies: config.replies,
    metrics: c.metrics,
    store: c.store,
    slots,
    mode,
    timings,
    ...(c.recorder ? { recorder: c.recorder } : {}),
  });
  const routes: Omit<MpRouteDeps, 'jobs'> = {
    secrets: {
      token: mp.token,
      appId: mp.appId,
      aesKey: mp.encodingAesKey ? parseEncodingAesKey(mp.encodingAesKey) : null,
    },
    maxSkewS: config.callbackMaxSkewS,
    replay: createReplayGuard(c.store, config.callbackMaxSkewS),
    ...(c.recorder ? { recorder: c.recorder } : {}),
    store: c.store,
    mode,
    delivery: {
      store: c.store,
      slots,
      metrics: c.metrics,
      stillThinking: config.replies.stillThinking,
      ...timings,
    },
    events: {
      store: c.store,
      appId: mp.appId,
      welcome: c.agents.for('mp', mp.appId).welcome,
      clickReplies: mp.clickReplies,
      forgetCustomer: (customer) => c.agents.for('mp', mp.appId).answerer.apply(customer, { conversation: null, rest: null }),
      metrics: c.metrics,
    },
    log,
  };
  return { handler, routes, api };
}

/** The OA API client: access_token through stable_token, shared in the store like WeCom's. */
function createMpApi(mp: MpConfig, proxy: string | null, secret: string, store: Store, log: Logger, metrics: Metrics): ApiClient {
  // WECHAT_API_PROXY: every OA API call (stable_token, custom/send, typing, media) goes through it when set.
  const http = createApiHttp(mp.apiBaseUrl, undefined, { proxy });
  const tokens = createTokenProvider({
    store,
    log,
    metrics,
    api: 'mp',
    endpoint: 'stable_token',
    appId: mp.appId,
    secret,
    fetchToken: ({ forceRefresh }) => fetchStableToken(http, mp.appId, secret, forceRefresh),
  });
  return createApiClient({ http, tokens, metrics });
}
