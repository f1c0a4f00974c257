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

/** Test knobs of the smart-bot channel (ms). */
export interface BotTuning {
  throttleMs?: number;
  handoverMs?: number;
}

/** The smart-bot channel's parts: the job handler, the callback route's deps (minus the queue), the streams. */
export interface BotChannel {
  handler: JobHandler;
  streams: BotStreams;
  routes: Omit<BotRouteDeps, 'jobs'>;
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
  const streams = createBotStreams(d.store);
  // Media URLs and response_url are absolute WeCom URLs: the base URL is only a default for relative ones.
  const http = createApiHttp('https://qyapi.weixin.qq.com', 15_000);
  const handler = createBotJobHandler({
    agents: d.agents,
    metrics: d.metrics,
    streams,
    replies: config.replies,
    media: d.media,
    http,
    aesKeys,
    ...(d.recorder ? { recorder: d.recorder } : {}),
    ...d.tuning,
  });
  return {
    handler,
    streams,
    routes: {
      bots: secrets,
      streams,
      replay: d.replay,
      maxSkewS: config.callbackMaxSkewS,
      welcomeOf: (botId) => welcomes.get(botId) ?? d.agents.for('bot', botId).welcome,
      metrics: d.metrics,
      ...(d.recorder ? { recorder: d.recorder } : {}),
    },
  };
}
