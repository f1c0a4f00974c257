import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import { LlmError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { LlmOutcome } from './run.js';

/** One agent's circuit breaker around whole LLM answers (all attempts of one customer message). */
export interface LlmBreaker {
  /**
   * Runs `ask` unless the breaker is open; an open breaker answers at once with an `error` outcome (the
   * customer gets REPLY_ON_ERROR now instead of after LLM_TIMEOUT_MS). Timeouts and errors count as failures;
   * refusals of the message itself (`bad_request`, `not_found`) and aborts (shutdown) count as nothing. Never throws.
   */
  run(ask: () => Promise<LlmOutcome>): Promise<LlmOutcome>;
  shutdown(): void;
}

export interface BreakerOptions {
  /** failures (percent) within the rolling window that open it (default 50) */
  errorThresholdPercentage?: number;
  /** answers within the window before it may open (default 5) */
  volumeThreshold?: number;
  /** rolling window, ms (default 60 s) */
  rollingCountTimeoutMs?: number;
  /** how long it stays open before one trial answer is let through (half-open), ms (default 30 s) */
  resetTimeoutMs?: number;
}

function isMessageFault(outcome: LlmOutcome): boolean {
  return !outcome.ok && outcome.reason === 'error' && outcome.error instanceof LlmError && ['bad_request', 'not_found'].includes(outcome.error.kind);
}

class FailedOutcome extends Error {
  constructor(readonly outcome: LlmOutcome) {
    super('LLM answer failed');
  }
}

/**
 * opossum (the well-kept Node circuit breaker) per agent, so an outage of one LLM app answers its customers with
 * the fallback at once and does not pile up jobs waiting out their deadline. The deadline itself stays with
 * `runLlm` (opossum's own timeout is off). State is visible as `bridge_llm_breaker_open{agent}` and logged on change.
 */
export function createLlmBreaker(agent: string, log: Logger, metrics: Metrics, o: BreakerOptions = {}): LlmBreaker {
  const breaker: CircuitBreaker<[() => Promise<LlmOutcome>], LlmOutcome> = new CircuitBreaker(
    async (ask: () => Promise<LlmOutcome>) => {
      const outcome = await ask();
      if (outcome.ok) return outcome;
      // An abort says nothing about the LLM, except during the half-open trial, which must not close on it.
      if (outcome.reason === 'aborted' && !breaker.halfOpen) return outcome;
      throw new FailedOutcome(outcome);
    },
    {
      timeout: false,
      errorThresholdPercentage: o.errorThresholdPercentage ?? 50,
      volumeThreshold: o.volumeThreshold ?? 5,
      rollingCountTimeout: o.rollingCountTimeoutMs ?? 60_000,
      resetTimeout: o.resetTimeoutMs ?? 30_000,
      // A refusal of one customer's message (HTTP 400 content check, Dify invalid_param, a bot tool call) means
      // the LLM is up: it must not open the breaker for everyone.
      errorFilter: (e: unknown) => e instanceof FailedOutcome && isMessageFault(e.outcome),
    },
  );
  const show = (open: number) => metrics.llmBreakerOpen.set({ agent }, open);
  show(0);
  breaker.on('open', () => {
    show(1);
    log.error({ agent }, 'LLM circuit breaker open: answering with REPLY_ON_ERROR at once until a trial succeeds');
  });
  breaker.on('halfOpen', () => log.warn({ agent }, 'LLM circuit breaker half-open: letting one answer through'));
  breaker.on('close', () => {
    show(0);
    log.info({ agent }, 'LLM circuit breaker closed: the LLM answers again');
  });
  return {
    run: async (ask) => {
      try {
        return await breaker.fire(ask);
      } catch (e) {
        if (e instanceof FailedOutcome) return e.outcome;
        return { ok: false, reason: 'rejected', error: e, attempts: 0 };
      }
    },
    shutdown: () => breaker.shutdown(),
  };
}
