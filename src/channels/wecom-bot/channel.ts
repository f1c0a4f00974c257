import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { parseEncodingAesKey } from '../../crypto/wxbizmsgcrypt.js';
import type { ReplayGuard } from '../../http/replay-guard.js';
import type { CallbackSecrets } from '../../http/secure-callback.js';
import type { Metrics } from '../../metrics.js';
import type { AgentRouter } from '../../pipeline/agents.js';
import type { JobHandler } from '../../pipeline/job-queue.js';
import type { MediaTools } from '../../pipeline/media-tools.js';
import type { MessageRecorder } from '../../pipeline/recorder.js';
import type { Store } from '../../store/types.js';
import { createApiHttp } from '../../wechat-api/http.js';
import { createBotJobHandler } from './handler.js';
import type { BotRouteDeps } from './routes.js';
import { createBotStreams, type BotStreams } from './streams.js';
import { startBotConnections, type BotConnections } from './ws-connections.js';
import { createBotWsInbound } from './ws-inbound.js';
import type { JobQueue } from '../../pipeline/job-queue.js';

/** Test knobs of the smart-bot channel (ms). */
export interface BotTuning {
  throttleMs?: number;
  handoverMs?: number;
  /** long connection: the lease's TTL and the pump's store poll */
  leaseMs?: number;
  pumpPollMs?: number;
}

/** The smart-bot channel's parts: the job handler, the callback route's deps (minus the queue), the streams. */
export interface BotChannel {
  handler: JobHandler;
  streams: BotStreams;
  routes: Omit<BotRouteDeps, 'jobs'>;
  /**
   * Starts competing for the long-connection bots' connections (none: nothing to start). Only processes that run
   * jobs call it (ROLE=web never holds a connection). @param holderId unique per process
   */
  connect(jobs: Pick<JobQueue, 'handOff'>, holderId: string): BotConnections | null;
}

/**
 * Builds the smart-bot channel from WECOM_BOTS (null when no bot is configured). Callback-mode bots get a route
 * (their Token and EncodingAESKey); every bot's messages are answered by the same job handler.
 */
export function createBotChannel(
  config: Config,
  d: { store: Store; log: Logger; metrics: Metrics; agents: AgentRouter; media: MediaTools; recorder?: MessageRecorder; replay: ReplayGuard; tuning?: BotTuning },
): BotChannel | null {
  if (config.bots.length === 0) return null;
  const secrets = new Map<string, CallbackSecrets>();
  const aesKeys = new Map<string, Buffer>();
  for (const bot of config.bots) {
    if (bot.mode !== 'callback') continue;
    const aesKey = parseEncodingAesKey(bot.encodingAesKey);
    secrets.set(bot.botId, { token: bot.token, aesKey, receiveid: '' });
    aesKeys.set(bot.botId, aesKey);
  }
  const welcomes = new Map(config.bots.map((b) => [b.botId, b.welcome]));
  const welcomeOf = (botId: string) => welcomes.get(botId) ?? d.agents.for('bot', botId).welcome;
  const wsBots = config.bots.flatMap((b) => (b.mode === 'websocket' ? [{ botId: b.botId, secret: b.secret }] : []));
  const streams = createBotStreams(d.store);
  // Media URLs and response_url are absolute WeCom URLs: the base URL is only a default for relative ones.
  // Deliberately not through WECHAT_API_PROXY: these are media downloads and response_url posts, not token-bearing
  // API calls (no trusted-IP list applies to them), and the interface keeps media calls off the proxy.
  const http = createApiHttp('https://qyapi.weixin.qq.com', 15_000);
  const { leaseMs, pumpPollMs, ...handlerTuning } = d.tuning ?? {};
  const handler = createBotJobHandler({
    agents: d.agents,
    metrics: d.metrics,
    streams,
    replies: config.replies,
    media: d.media,
    http,
    aesKeys,
    ...(d.recorder ? { recorder: d.recorder } : {}),
    ...handlerTuning,
  });
  return {
    handler,
    streams,
    routes: {
      bots: secrets,
      streams,
      replay: d.replay,
      maxSkewS: config.callbackMaxSkewS,
      welcomeOf,
      metrics: d.metrics,
      ...(d.recorder ? { recorder: d.recorder } : {}),
    },
    connect: (jobs, holderId) => {
      if (wsBots.length === 0) return null;
      const log = d.log.child({ channel: 'bot' });
      const replyOnError = (botId: string) => d.agents.for('bot', botId).replyOnError;
      const onCallback = createBotWsInbound({ streams, jobs, metrics: d.metrics, log, welcomeOf, replyOnError, ...(d.recorder ? { recorder: d.recorder } : {}), ...(pumpPollMs ? { pollMs: pumpPollMs } : {}) });
      return startBotConnections({ bots: wsBots, wsUrl: config.botWsUrl, store: d.store, holderId, log, metrics: d.metrics, onCallback, ...(leaseMs ? { leaseMs } : {}) });
    },
  };
}
