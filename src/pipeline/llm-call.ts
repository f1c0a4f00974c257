import pLimit from 'p-limit';
import type { LlmBreaker } from '../llm/breaker.js';
import { runLlm, type LlmOutcome } from '../llm/run.js';
import type { LlmAdapter, ReplyRequest } from '../llm/types.js';
import type { Metrics } from '../metrics.js';

/**
 * One agent's way to ask its LLM, shared by the channels' answerer and the `/v1` API so both go through the same
 * concurrency limit, circuit breaker, deadline and retries, and land in the same metric.
 * @param signal the caller's cancel (shutdown, a lost lease, a `/v1` client that hung up)
 * @returns the outcome (never throws) and the seconds it took, counted once the call had a slot
 */
export type LlmCall = (req: ReplyRequest, signal: AbortSignal) => Promise<{ outcome: LlmOutcome; seconds: number }>;

export interface LlmCallOptions {
  adapter: LlmAdapter;
  /** agent name for metrics */
  agent: string;
  /** the agent's deadline per message, ms */
  timeoutMs: number;
  metrics: Metrics;
  /** the agent's circuit breaker; none: every call asks */
  breaker?: LlmBreaker;
  /** calls at once in this process (default: unbounded) */
  maxConcurrency?: number;
  /** first retry backoff, ms (tests shorten it) */
  minBackoffMs?: number;
}

/** Builds an agent's LlmCall; observes `bridge_llm_duration_seconds{agent,outcome}`. */
export function createLlmCall(o: LlmCallOptions): LlmCall {
  // The deadline starts once a slot is free: a queue in front of the provider is not the provider's slowness.
  const slots = pLimit(o.maxConcurrency ?? Number.POSITIVE_INFINITY);
  return async (req, signal) =>
    slots(async () => {
      const started = performance.now();
      const ask = () => runLlm(o.adapter, req, { timeoutMs: o.timeoutMs, signal, minBackoffMs: o.minBackoffMs });
      const outcome = await (o.breaker ? o.breaker.run(ask) : ask());
      const seconds = (performance.now() - started) / 1000;
      o.metrics.llmDuration.observe({ agent: o.agent, outcome: outcome.ok ? 'ok' : outcome.reason }, seconds);
      return { outcome, seconds };
    });
}
