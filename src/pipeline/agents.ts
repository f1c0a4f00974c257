import type { Logger } from 'pino';
import type { Replies } from '../config.js';
import type { AgentConfig } from '../config-agents.js';
import { createLlmBreaker, type BreakerOptions, type LlmBreaker } from '../llm/breaker.js';
import { createAdapter } from '../llm/create-adapter.js';
import type { LlmAdapter } from '../llm/types.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/types.js';
import { createAnswerer, type Answerer, type AnswererOptions } from './answer.js';
import { createRateLimiter } from './rate-limit.js';

/** One configured agent at run time. */
export interface Agent {
  name: string;
  answerer: Answerer;
  /** the agent's welcome, or WELCOME_MESSAGE; null: none */
  welcome: string | null;
}

/** Which agent answers which account (docs/configuration.md `AGENT_ROUTES`). */
export interface AgentRouter {
  /** `AGENT_ROUTES["<channel>:<account>"]`, else the default agent */
  for(channel: 'kf' | 'mp' | 'bot', account: string): Agent;
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
    const answerer = createAnswerer({
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
    });
    byName.set(config.name, { name: config.name, answerer, welcome: config.welcome });
  }
  const fallback = byName.get('default');
  if (!fallback) throw new Error('the default agent is missing');
  return {
    for: (channel, account) => byName.get(o.routes[`${channel}:${account}`] ?? 'default') ?? fallback,
    anyWelcome: o.agents.some((a) => a.welcome !== null),
    maxTimeoutMs: Math.max(...o.agents.map((a) => a.timeoutMs)),
    shutdown: () => breakers.forEach((b) => b.shutdown()),
  };
}
