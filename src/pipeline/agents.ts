import type { Logger } from 'pino';
import type { Replies } from '../config.js';
import type { AgentConfig } from '../config-agents.js';
import { createLlmBreaker, type BreakerOptions, type LlmBreaker } from '../llm/breaker.js';
import { createAdapter } from '../llm/create-adapter.js';
import type { LlmAdapter } from '../llm/types.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/types.js';
import { createAnswerer, type Answerer, type AnswererOptions } from './answer.js';
import { createLlmCall, type LlmCall } from './llm-call.js';
import { createRateLimiter } from './rate-limit.js';

/** One configured agent at run time. */
export interface Agent {
  name: string;
  /** `echo`, `openai`, `dify`, `coze`, `ollama`, `webhook` */
  provider: string;
  answerer: Answerer;
  /** asks the agent's LLM directly (the `/v1` API): same limits, breaker and deadline as the answerer's */
  call: LlmCall;
  /** whether the provider keeps the conversation itself (Dify, Coze: a conversation id), so a caller sends one turn */
  stateful: boolean;
  /** the agent's deadline per message, ms */
  timeoutMs: number;
  /** the agent's fallback texts */
  replyOnTimeout: string;
  replyOnError: string;
  /** the agent's welcome, or WELCOME_MESSAGE; null: none */
  welcome: string | null;
}

/** Which agent answers which account (docs/configuration.md `AGENT_ROUTES`). */
export interface AgentRouter {
  /** `AGENT_ROUTES["<channel>:<account>"]`, else the default agent */
  for(channel: 'kf' | 'mp' | 'bot', account: string): Agent;
  /** the agent of that name, or null (`/v1` model ids are agent names) */
  named(name: string): Agent | null;
  /** every agent, `default` first */
  readonly all: readonly Agent[];
  /** whether any agent has a welcome text (kf keeps welcome_codes only then) */
  readonly anyWelcome: boolean;
  /** the longest agent deadline, ms (job leases must outlast it) */
  readonly maxTimeoutMs: number;
  /** stops the breakers' timers */
  shutdown(): void;
}

export interface AgentRouterOptions {
  agents: AgentConfig[];
  routes: Record<string, string>;
  replies: Replies;
  keywords: { reset: string[]; continue: string[] };
  store: Store;
  metrics: Metrics;
  log: Logger;
  /** an adapter for the default agent instead of the configured one (tests) */
  defaultAdapter?: LlmAdapter;
  /** first LLM retry backoff, ms (tests shorten it) */
  minBackoffMs?: number;
  breaker?: BreakerOptions;
  /** RATE_LIMIT_PER_CUSTOMER_PER_MIN (0: off) */
  rateLimitPerMin: number;
  /** formats long answers off the event loop (see AnswererOptions.formatLong) */
  formatLong?: AnswererOptions['formatLong'];
  /** the operator's customer id of a place (see AnswererOptions.identify) */
  identify?: AnswererOptions['identify'];
}

/** Builds every agent (adapter, circuit breaker, answerer with its own deadline and fallback texts) once. */
export function createAgentRouter(o: AgentRouterOptions): AgentRouter {
  const breakers: LlmBreaker[] = [];
  // One count per customer whichever agent answers them.
  const limiter = createRateLimiter(o.store, o.rateLimitPerMin);
  const byName = new Map<string, Agent>();
  for (const config of o.agents) {
    const log = o.log.child({ agent: config.name });
    const breaker = createLlmBreaker(config.name, log, o.metrics, o.breaker);
    breakers.push(breaker);
    const adapter = config.name === 'default' && o.defaultAdapter ? o.defaultAdapter : createAdapter(config);
    const call = createLlmCall({
      adapter,
      agent: config.name,
      timeoutMs: config.timeoutMs,
      metrics: o.metrics,
      breaker,
      maxConcurrency: config.maxConcurrency,
      minBackoffMs: o.minBackoffMs,
    });
    const answerer = createAnswerer({
      call,
      store: o.store,
      adapter,
      agent: config.name,
      timeoutMs: config.timeoutMs,
      replies: { ...o.replies, onTimeout: config.replyOnTimeout, onError: config.replyOnError },
      keywords: o.keywords,
      metrics: o.metrics,
      log,
      minBackoffMs: o.minBackoffMs,
      breaker,
      limiter,
      maxConcurrency: config.maxConcurrency,
      ...(o.formatLong ? { formatLong: o.formatLong } : {}),
      ...(o.identify ? { identify: o.identify } : {}),
    });
    byName.set(config.name, {
      name: config.name,
      provider: adapter.provider,
      answerer,
      call,
      stateful: adapter.provider === 'dify' || adapter.provider === 'coze',
      timeoutMs: config.timeoutMs,
      replyOnTimeout: config.replyOnTimeout,
      replyOnError: config.replyOnError,
      welcome: config.welcome,
    });
  }
  const fallback = byName.get('default');
  if (!fallback) throw new Error('the default agent is missing');
  return {
    for: (channel, account) => byName.get(o.routes[`${channel}:${account}`] ?? 'default') ?? fallback,
    named: (name) => byName.get(name) ?? null,
    all: [...byName.values()],
    anyWelcome: o.agents.some((a) => a.welcome !== null),
    maxTimeoutMs: Math.max(...o.agents.map((a) => a.timeoutMs)),
    shutdown: () => breakers.forEach((b) => b.shutdown()),
  };
}
