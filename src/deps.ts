import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { AppDeps } from './app.js';
import { createKfJobHandler } from './channels/wecom-kf/handler.js';
import { createKfPuller, type KfPuller } from './channels/wecom-kf/puller.js';
import { createKfPullQueue, type KfPullQueue } from './channels/wecom-kf/pull-queue.js';
import { createMpChannel } from './channels/wechat-mp/channel.js';
import { createBotChannel, type BotTuning } from './channels/wecom-bot/channel.js';
import { DEFAULT_CLUSTER_SHARDS, type Config, type KfConfig } from './config.js';
import { parseEncodingAesKey } from './crypto/wxbizmsgcrypt.js';
import type { BreakerOptions } from './llm/breaker.js';
import type { LlmAdapter } from './llm/types.js';
import { maskCredentials } from './errors.js';
import { createReplayGuard } from './http/replay-guard.js';
import { openData, operatorApis } from './deps-data.js';
import type { DataLayer, DataTuning } from './log/create.js';
import { createExtractPool } from './media/extract-pool.js';
import { createMediaTools } from './media/tools.js';
import { createMetrics, primeMetrics, type Metrics } from './metrics.js';
import type { MediaTools } from './pipeline/media-tools.js';
import { createAgentRouter } from './pipeline/agents.js';
import { dispatchByChannel } from './pipeline/dispatch.js';
import { createBullmqQueue } from './pipeline/bullmq-queue.js';
import type { JobHandler, JobQueue, QueueBaseOptions } from './pipeline/job-queue.js';
import { createMemoryQueue } from './pipeline/memory-queue.js';
import { createMemoryJobRecords } from './store/memory-jobs.js';
import { createMemoryStore } from './store/memory.js';
import { connectRedis, connectWorkerRedis, redisTargetOf } from './store/redis-client.js';
import { queueShardPrefixes, singleQueuePrefix } from './pipeline/queue-shards.js';
import { createRedisStore } from './store/redis.js';
import type { Store } from './store/types.js';
import { createApiHttp } from './wechat-api/http.js';
import { createTokenProvider } from './wechat-api/token.js';
import { createApiClient, type ApiClient } from './wechat-api/api-client.js';
import { fetchWecomToken } from './wechat-api/wecom-token.js';

/** msgid dedup lives this long: beyond WeCom's 3-day replay window (sync_msg keeps 3 days). */
export const DEDUP_TTL_MS = 4 * 24 * 3600_000;
/** An `all` process pulls and runs what it was handed at once; the sweep only recovers failed or released work. */
export const SWEEP_INTERVAL_MS = 5000;
/** Jobs running at once in one process, at least (jobConcurrency). */
export const JOB_CONCURRENCY = 64;

/**
 * Jobs one process runs at once: enough for every agent to use all of its `maxConcurrency`, and never fewer than
 * JOB_CONCURRENCY (a job also waits on WeChat sends, media and the customer's turn). The agents' limits are the one
 * knob: a job that only waits for an LLM slot costs an idle promise, while a process limit below them would leave a
 * slow agent's slots unused and the queue growing.
 */
export function jobConcurrency(agents: { maxConcurrency: number }[]): number {
  return Math.max(JOB_CONCURRENCY, agents.reduce((sum, a) => sum + a.maxConcurrency, 0));
}
/** Lease margin over LLM_TIMEOUT_MS (issue #2: lease = LLM_TIMEOUT_MS + 30 s, renewed while working). */
export const LEASE_MARGIN_MS = 30_000;

export interface Deps {
  store: Store;
  /** the message log, failures and identities */
  data: DataLayer;
  metrics: Metrics;
  jobs: JobQueue;
  kfPuller: KfPuller | null;
  app: AppDeps;
  /** Periodic work: pulls still wanted, and (embedded mode) jobs released with a backoff or whose lease expired. */
  sweep(): Promise<void>;
  /** how often main runs `sweep`, ms: a recovery sweep (marks a failed or killed pull left); new work arrives by queue */
  sweepIntervalMs: number;
  /** Stops the background work (running jobs get `graceMs` to finish, then are released) and closes connections. */
  close(graceMs: number): Promise<void>;
}

export interface DepsOverrides {
  /** an adapter to use instead of the configured one (tests) */
  adapter?: LlmAdapter;
  /** Redis key prefix (tests use a unique one); default `bridge:` */
  redisPrefix?: string;
  /** first LLM retry backoff, ms */
  llmMinBackoffMs?: number;
  defaultMetrics?: boolean;
  /** circuit breaker settings for every agent (tests shorten them) */
  breaker?: BreakerOptions;
  /** downloads on a customer's behalf (tests inject a resolver through `createMediaTools`) */
  media?: MediaTools;
  /** this build's version (package.json; main.ts passes it) for bridge_build_info; default `dev` */
  version?: string;
  /** the data layer's writer and timers (tests shorten them) */
  dataTuning?: DataTuning;
  /** the job queue's retry limits (tests shorten them to reach a give-up quickly) */
  queue?: Pick<QueueBaseOptions, 'maxAttempts' | 'retryWindowMs' | 'retryDelayMs'>;
  /** the smart bot's snapshot throttle and stream window (tests shorten them) */
  bot?: BotTuning;
}

/**
 * Opens connections and wires the pipeline. Only main.ts and tests call it.
 * @throws when Redis is configured but cannot be reached at start
 */
export async function createDeps(config: Config, log: Logger, o: DepsOverrides = {}): Promise<Deps> {
  const target = redisTargetOf(config);
  const metrics = createMetrics({ defaultMetrics: o.defaultMetrics ?? true, redis: target !== null, mysql: config.data.mysqlUrl !== null });
  const prefix = o.redisPrefix ?? 'bridge:';
  const redis = target ? await connectRedis(target, log, metrics) : null;
  const cluster = target?.kind === 'cluster';
  const store = redis ? createRedisStore(redis, prefix) : createMemoryStore();
  // The log, failures and identities change several keys per script: on a cluster they share one hash tag (one
  // slot). With one Redis the names stay as they were, so an upgrade keeps the stored identities.
  const dataPrefix = cluster ? `${prefix}{data}:` : prefix;
  const wiring = await openData(config, { redis, prefix: dataPrefix, log, metrics, ...(o.dataTuning ? { tuning: o.dataTuning } : {}) });
  // One pool of worker threads for customer content: page and file extraction, and formatting long answers.
  const extraction = createExtractPool({ log: log.child({ part: 'extraction' }) });
  const agents = createAgentRouter({
    agents: config.agents,
    routes: config.routes,
    replies: config.replies,
    keywords: config.keywords,
    store,
    metrics,
    log,
    defaultAdapter: o.adapter,
    minBackoffMs: o.llmMinBackoffMs,
    breaker: o.breaker,
    rateLimitPerMin: config.rateLimitPerMin,
    formatLong: (input, signal) => extraction.format(input, signal),
    identify: wiring.identify,
  });
  const leaseMs = agents.maxTimeoutMs + LEASE_MARGIN_MS;
  const routes = config.role !== 'worker';
  const works = config.role !== 'web';

  const media = o.media ?? createMediaTools(config.media, log.child({ part: 'media' }), { pool: extraction });
  const kf = config.kf;
  const kfApi = kf ? createKfApi(kf, config.wechatApiProxy, store, log, metrics) : null;
  if (config.wechatApiProxy && (kf || config.mp?.appSecret)) {
    log.info({ proxy: maskCredentials(config.wechatApiProxy) }, 'WeCom / WeChat API calls go through WECHAT_API_PROXY');
  }
  const recorder = wiring.recorder;
  const mp = config.mp ? createMpChannel(config, config.mp, { store, log, metrics, agents, media, recorder }) : null;
  const replay = createReplayGuard(store, config.callbackMaxSkewS);
  const bot = createBotChannel(config, { store, log, metrics, agents, media, recorder, replay, ...(o.bot ? { tuning: o.bot } : {}) });
  const handler: JobHandler = dispatchByChannel({
    ...(kfApi
      ? {
          kf: createKfJobHandler({
            api: kfApi,
            agents,
            replies: config.replies,
            metrics,
            store,
            handoff: config.handoff,
            handoffKeywords: config.keywords.handoff,
            media,
            recorder,
          }),
        }
      : {}),
    ...(mp ? { mp: mp.handler } : {}),
    ...(bot ? { bot: bot.handler } : {}),
  });
  const queueDeps = { store, log, metrics, handler, leaseMs, dedupTtlMs: DEDUP_TTL_MS, concurrency: jobConcurrency(config.agents), ...o.queue };
  const queuePrefix = prefix.replace(/:$/, '');
  const jobs: JobQueue =
    redis && target
      ? createBullmqQueue({
          ...queueDeps,
          producer: redis,
          workerConnection: works ? connectWorkerRedis(target, log) : null,
          prefix: queuePrefix,
          layouts: {
            key: `${queuePrefix}:queue-layouts`,
            shards: config.queueShards,
            defaultShards: cluster ? DEFAULT_CLUSTER_SHARDS : 1,
            prefixesOf: (n) => queueShardPrefixes(queuePrefix, n, cluster),
          },
        })
      : createMemoryQueue({ ...queueDeps, records: createMemoryJobRecords() });
  // Read through a function: the puller and its pull queue refer to each other.
  const pullQueueOf = redis && !works ? () => pullQueue as KfPullQueue : null;
  const kfPuller: KfPuller | null =
    kf && kfApi
      ? createKfPuller({
          api: kfApi,
          store,
          config: kf,
          log: log.child({ channel: 'kf' }),
          metrics,
          welcomeEnabled: agents.anyWelcome,
          jobs,
          pullHere: works,
          recorder,
          ...(pullQueueOf ? { handOffPull: (account: string) => pullQueueOf().request(account) } : {}),
        })
      : null;
  // With Redis, web processes hand kf pulls to the workers through a BullMQ queue the workers block on (no poll).
  const pullQueue: KfPullQueue | null =
    kfPuller && redis && target
      ? createKfPullQueue({
          producer: redis,
          workerConnection: works ? connectWorkerRedis(target, log) : null,
          prefix: singleQueuePrefix(queuePrefix, 'kf-pull', cluster),
          log: log.child({ channel: 'kf' }),
          pull: (account) => kfPuller.pullNow(account),
        })
      : null;

  // ROLE=web never holds a bot's long connection: its messages become jobs, and web processes run none.
  const botConnections = bot && works ? bot.connect(jobs, `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`) : null;

  primeMetrics(metrics, {
    channels: [...(kf ? ['kf'] : []), ...(config.mp ? ['mp'] : []), ...(bot ? ['bot'] : [])],
    agents: config.agents.map((a) => a.name),
    tokenEndpoints: [...(kf ? ['gettoken'] : []), ...(config.mp?.appSecret ? ['stable_token'] : [])],
    version: o.version ?? 'dev',
  });

  const checkReady = () => withTimeout(store.ping(), 1000);
  const apis = operatorApis(config, { wiring, agents, store, jobs, kfApi, mpApi: mp?.api ?? null, version: o.version ?? 'dev', checkReady, metrics, log });

  return {
    store,
    metrics,
    jobs,
    kfPuller,
    data: wiring.data,
    app: {
      log,
      metrics,
      metricsToken: config.metricsToken,
      admin: routes ? apis.admin : null,
      openaiCompat: routes ? apis.openaiCompat : null,
      maxBodyBytes: config.maxBodyBytes,
      checkReady,
      kf:
        config.kf && kfPuller && routes
          ? {
              puller: kfPuller,
              replay,
              maxSkewS: config.callbackMaxSkewS,
              secrets: {
                token: config.kf.token,
                aesKey: parseEncodingAesKey(config.kf.encodingAesKey),
                receiveid: config.kf.corpId,
              },
            }
          : null,
      mp: mp && routes ? { ...mp.routes, jobs } : null,
      bot: bot && routes ? { ...bot.routes, jobs } : null,
    },
    sweepIntervalMs: SWEEP_INTERVAL_MS,
    sweep: async () => {
      if (!works) return;
      await kfPuller?.sweep();
      await jobs.sweep();
    },
    close: async (graceMs) => {
      await kfPuller?.stop(Math.min(graceMs, 5000));
      await pullQueue?.close();
      await jobs.stop(graceMs);
      // After the drain: the streams of answers finished meanwhile (here or in another worker) still reach WeCom on
      // this connection's req_ids; then the lease goes and another process connects within one acquisition period.
      await botConnections?.stop();
      agents.shutdown();
      await media.close();
      await extraction.close();
      await wiring.bus.close();
      await wiring.data.close();
      await store.close();
    },
  };
}

/**
 * The WeCom API client of the kf channel: its own axios instance and a shared access_token cache.
 * @param proxy WECHAT_API_PROXY: every call (token, sync, send, media) goes through it when set
 */
function createKfApi(kf: KfConfig, proxy: string | null, store: Store, log: Logger, metrics: Metrics): ApiClient {
  const http = createApiHttp(kf.apiBaseUrl, undefined, { proxy });
  const tokens = createTokenProvider({
    store,
    log,
    metrics,
    api: 'wecom',
    endpoint: 'gettoken',
    appId: kf.corpId,
    secret: kf.kfSecret,
    fetchToken: () => fetchWecomToken(http, kf.corpId, kf.kfSecret),
  });
  return createApiClient({ http, tokens, metrics });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
