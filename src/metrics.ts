import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The app's Prometheus metrics on an app-owned registry (never prom-client's global one, so two apps in one
 * test process do not share counters). Names and labels follow shared/docs/interface.md ("Metrics").
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
  tokenRefreshes: Counter<'api'>;
  wechatErrors: Counter<'api' | 'errcode'>;
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
}

/**
 * @param opts.defaultMetrics also collect Node process metrics (event loop lag, heap, RSS); off in tests.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
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
      help: 'access_token fetches from the platform',
      labelNames: ['api'],
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
