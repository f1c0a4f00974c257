import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The app's Prometheus metrics on an app-owned registry (never prom-client's global one, so two apps in one
 * test process do not share counters). Names and labels follow docs/configuration.md ("Metrics").
 */
export interface Metrics {
  registry: Registry;
  /** channel: `kf`; outcome: `accepted`, `verified` (GET), `bad_request`, `unauthorized`, `too_large`, `unavailable`, `ignored` */
  callbacks: Counter<'channel' | 'outcome'>;
  /** seconds from request start to the response being written, callback routes only */
  ackDuration: Histogram<'channel'>;
  /** kind: answer | fallback | command | welcome | failed */
  replies: Counter<'channel' | 'kind'>;
  /** seconds per customer message (all attempts); outcome: ok | timeout | error */
  llmDuration: Histogram<'agent' | 'outcome'>;
  dedupHits: Counter<'channel'>;
  /** api: the token endpoint (`gettoken`, `stable_token`); outcome: `ok` | `error` */
  tokenRefreshes: Counter<'api' | 'outcome'>;
  /** api: the failing call (`gettoken`, `stable_token`, `kf/send_msg` …); errcode: the platform's, or the HTTP status / `network` */
  wechatErrors: Counter<'api' | 'errcode'>;
  /** jobs whose attempts ran out (RETRY_WINDOW_MS or MAX_JOB_ATTEMPTS): REPLY_ON_ERROR was tried once more */
  jobsGivenUp: Counter<'channel'>;
  /** 1 while the store's Redis connection is ready; registered only when REDIS_URL is set */
  redisUp: Gauge | null;
  /** always 1; the labels say which build answers */
  buildInfo: Gauge<'version' | 'node'>;
  /** message-log rows by outcome: `ok` written, `retried` written after a failed attempt, `dropped` lost (buffer full) */
  logWrites: Counter<'outcome'>;
  /** 1 while MySQL answers, 0 while it does not; registered only when MYSQL_URL is set */
  mysqlUp: Gauge | null;
  /** jobs not yet started: BullMQ's waiting + delayed count (every process alike), or this process's embedded queue */
  jobsWaiting: Gauge;
  /** seconds from a job's hand-off to its first start (the queue in front of the answers); retries not counted */
  jobLag: Histogram;
  /**
   * OA deliveries in passive/auto mode by outcome: `answered` (passive reply), `held` (not ready; WeChat
   * retries), `still_thinking`, `acked` (`success`; the answer goes out actively)
   */
  mpDeliveries: Counter<'outcome'>;
  /** 1 while an auto-mode account answers passively because it answered 48001 */
  mpPassiveOnly: Gauge<'appid'>;
  /** 1 while an agent's circuit breaker is open (its customers get REPLY_ON_ERROR at once) */
  llmBreakerOpen: Gauge<'agent'>;
  /** customer messages over RATE_LIMIT_PER_CUSTOMER_PER_MIN (told once, then not answered) */
  rateLimited: Counter<'agent'>;
  /** kf: `msg_send_fail` events (a part WeCom accepted but could not deliver), by `fail_type` */
  kfSendFailed: Counter<'fail_type'>;
  /** kf: customer messages not answered because a human or the queue holds the conversation */
  kfHumanHeld: Counter;
  /** smart bot: streams begun and not yet finished (this process: callback mode counts the jobs writing snapshots) */
  botStreamsActive: Gauge;
  /** smart bot, long-connection mode: 1 while this process holds the bot's authenticated WebSocket */
  botWsConnected: Gauge<'bot'>;
}

/**
 * @param opts.defaultMetrics also collect Node process metrics (event loop lag, heap, RSS); off in tests.
 * @param opts.redis register `bridge_redis_up` (only meaningful when REDIS_URL is set)
 * @param opts.mysql register `bridge_mysql_up` (only meaningful when MYSQL_URL is set)
 */
export function createMetrics(opts: { defaultMetrics?: boolean; redis?: boolean; mysql?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    callbacks: new Counter({
      name: 'bridge_callbacks_total',
      help: 'Callbacks received, by channel and outcome',
      labelNames: ['channel', 'outcome'],
      registers,
    }),
    ackDuration: new Histogram({
      name: 'bridge_ack_duration_seconds',
      help: 'Time to acknowledge a callback',
      labelNames: ['channel'],
      buckets: [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    replies: new Counter({
      name: 'bridge_replies_total',
      help: 'Replies to customers, by kind (answer, fallback, command, welcome, failed)',
      labelNames: ['channel', 'kind'],
      registers,
    }),
    llmDuration: new Histogram({
      name: 'bridge_llm_duration_seconds',
      help: 'LLM time per customer message including retries',
      labelNames: ['agent', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120],
      registers,
    }),
    dedupHits: new Counter({
      name: 'bridge_dedup_hits_total',
      help: 'Messages already handed off or answered, seen again',
      labelNames: ['channel'],
      registers,
    }),
    tokenRefreshes: new Counter({
      name: 'bridge_token_refreshes_total',
      help: 'access_token fetches from the platform, by endpoint and outcome (ok, error)',
      labelNames: ['api', 'outcome'],
      registers,
    }),
    jobsGivenUp: new Counter({
      name: 'bridge_jobs_given_up_total',
      help: 'Jobs whose attempts ran out (1 h of retries, or 20 starts); REPLY_ON_ERROR was tried once more',
      labelNames: ['channel'],
      registers,
    }),
    redisUp: opts.redis
      ? new Gauge({ name: 'bridge_redis_up', help: '1 while the Redis connection is ready, 0 while it is down', registers })
      : null,
    logWrites: new Counter({
      name: 'bridge_log_writes_total',
      help: 'Message-log rows by outcome: ok, retried (written after a failed attempt), dropped (lost: the buffer was full)',
      labelNames: ['outcome'],
      registers,
    }),
    mysqlUp: opts.mysql ? new Gauge({ name: 'bridge_mysql_up', help: '1 while MySQL answers, 0 while it does not', registers }) : null,
    buildInfo: new Gauge({
      name: 'bridge_build_info',
      help: 'Always 1: the version of wechat-ai-bridge and of Node.js serving',
      labelNames: ['version', 'node'],
      registers,
    }),
    wechatErrors: new Counter({
      name: 'bridge_wechat_errors_total',
      help: 'Non-zero errcodes and transport failures from WeChat/WeCom APIs',
      labelNames: ['api', 'errcode'],
      registers,
    }),
    jobsWaiting: new Gauge({
      name: 'bridge_jobs_waiting',
      help: 'Jobs not yet started (with Redis: the BullMQ queue, waiting and delayed)',
      registers,
    }),
    botStreamsActive: new Gauge({
      name: 'bridge_bot_streams_active',
      help: 'Smart-bot answer streams begun and not yet finished in this process',
      registers,
    }),
    botWsConnected: new Gauge({
      name: 'bridge_bot_ws_connected',
      help: '1 while this process holds the smart bot\'s authenticated long connection',
      labelNames: ['bot'],
      registers,
    }),
    jobLag: new Histogram({
      name: 'bridge_job_lag_seconds',
      help: 'Time from hand-off to the first start of a job',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers,
    }),
    mpDeliveries: new Counter({
      name: 'bridge_mp_deliveries_total',
      help: 'Official Account deliveries in passive/auto mode, by outcome (answered, held, still_thinking, acked)',
      labelNames: ['outcome'],
      registers,
    }),
    rateLimited: new Counter({
      name: 'bridge_rate_limited_total',
      help: 'Customer messages over RATE_LIMIT_PER_CUSTOMER_PER_MIN (the first is told, later ones get no reply)',
      labelNames: ['agent'],
      registers,
    }),
    llmBreakerOpen: new Gauge({
      name: 'bridge_llm_breaker_open',
      help: '1 while an agent circuit breaker is open (customers get REPLY_ON_ERROR at once)',
      labelNames: ['agent'],
      registers,
    }),
    kfSendFailed: new Counter({
      name: 'bridge_kf_send_failed_total',
      help: 'kf msg_send_fail events: accepted parts WeCom could not deliver, by fail_type (the rest of that reply is cancelled)',
      labelNames: ['fail_type'],
      registers,
    }),
    kfHumanHeld: new Counter({
      name: 'bridge_kf_human_held_total',
      help: 'kf customer messages left to a human: the queue or a servicer holds the conversation (no LLM call)',
      registers,
    }),
    mpPassiveOnly: new Gauge({
      name: 'bridge_mp_passive_only',
      help: '1 while an auto-mode Official Account answers passively because it has no customer-service API (48001)',
      labelNames: ['appid'],
      registers,
    }),
  };
}

/** Callback outcomes a route can report (bridge_callbacks_total{outcome}). */
const CALLBACK_OUTCOMES = ['accepted', 'verified', 'bad_request', 'unauthorized', 'too_large', 'unavailable', 'ignored', 'retry', 'event', 'held', 'overloaded'];
const REPLY_KINDS = ['answer', 'fallback', 'command', 'welcome', 'failed'];
const LLM_OUTCOMES = ['ok', 'timeout', 'error', 'rejected'];

/**
 * Sets every known label combination to 0 (histograms: empty), so that a dashboard or an alert such as
 * `increase(bridge_replies_total{kind="failed"}[5m]) > 0` sees the series from the start instead of only after
 * the first event, and `bridge_build_info` to 1.
 * @param known.channels the enabled channels (`kf`, `mp`); known.agents the agent names; known.tokenEndpoints
 *   `gettoken` / `stable_token` as configured
 */
export function primeMetrics(m: Metrics, known: { channels: string[]; agents: string[]; tokenEndpoints: string[]; version: string }): void {
  m.buildInfo.set({ version: known.version, node: process.version }, 1);
  for (const outcome of ['ok', 'retried', 'dropped']) m.logWrites.inc({ outcome }, 0);
  for (const channel of known.channels) {
    for (const outcome of CALLBACK_OUTCOMES) m.callbacks.inc({ channel, outcome }, 0);
    for (const kind of REPLY_KINDS) m.replies.inc({ channel, kind }, 0);
    m.dedupHits.inc({ channel }, 0);
    m.jobsGivenUp.inc({ channel }, 0);
    m.ackDuration.zero({ channel });
  }
  for (const agent of known.agents) {
    for (const outcome of LLM_OUTCOMES) m.llmDuration.zero({ agent, outcome });
    m.llmBreakerOpen.set({ agent }, 0);
    m.rateLimited.inc({ agent }, 0);
  }
  for (const api of known.tokenEndpoints) for (const outcome of ['ok', 'error']) m.tokenRefreshes.inc({ api, outcome }, 0);
}
