import pRetry from 'p-retry';
import { LlmError } from '../errors.js';
import type { LlmAdapter, ReplyRequest, ReplyResult } from './types.js';

/** The outcome of asking the LLM about one customer message. */
export type LlmOutcome =
  | { ok: true; result: ReplyResult; attempts: number }
  /**
   * `timeout`: the deadline passed; `error`: any other failure; `aborted`: the caller's signal (shutdown);
   * `rejected`: not asked, the agent's circuit breaker is open
   */
  | { ok: false; reason: 'timeout' | 'error' | 'aborted' | 'rejected'; error: unknown; attempts: number };

export interface RunLlmOptions {
  /** one deadline for every attempt and backoff of this message, ms (LLM_TIMEOUT_MS) */
  timeoutMs: number;
  /** caller's cancel (shutdown, lost lease); never turned into a fallback */
  signal: AbortSignal;
  /** at most this many retries after the first attempt (docs/configuration.md: 2) */
  retries?: number;
  /** first backoff, ms; doubles each retry (a provider's retry-after wins when longer) */
  minBackoffMs?: number;
}

/**
 * Asks `adapter` once, retrying at most `retries` times, only while nothing has streamed and the error is
 * retryable, all inside one deadline (docs/configuration.md "LLM failures"). Retries and backoff use p-retry.
 * Never throws: every failure is an outcome, so the caller can answer with the exact fallback text.
 */
export async function runLlm(adapter: LlmAdapter, req: ReplyRequest, o: RunLlmOptions): Promise<LlmOutcome> {
  const deadline = AbortSignal.timeout(o.timeoutMs);
  const endsAt = performance.now() + o.timeoutMs;
  const minBackoffMs = o.minBackoffMs ?? 500;
  const signal = AbortSignal.any([o.signal, deadline]);
  let attempts = 0;
  try {
    const result = await pRetry(
      async () => {
        attempts += 1;
        return adapter.reply(req, signal);
      },
      {
        retries: o.retries ?? 2,
        minTimeout: minBackoffMs,
        factor: 2,
        signal,
        shouldRetry: ({ error }) =>
          !signal.aborted && error instanceof LlmError && error.retryable && error.partialText === '',
        onFailedAttempt: async ({ error, retriesLeft, attemptNumber }) => {
          const retryAfterMs = error instanceof LlmError ? (error.options.retryAfterMs ?? 0) : 0;
          if (retriesLeft === 0 || retryAfterMs === 0 || signal.aborted) return;
          // A provider's retry-after that cannot fit the deadline: fail now (REPLY_ON_ERROR at once) rather than
          // wait out the deadline for nothing. Otherwise wait what it asks beyond p-retry's own backoff.
          if (performance.now() + retryAfterMs >= endsAt) throw error;
          const backoffMs = minBackoffMs * 2 ** (attemptNumber - 1);
          if (retryAfterMs > backoffMs) await sleep(retryAfterMs - backoffMs, signal);
        },
      },
    );
    return { ok: true, result, attempts };
  } catch (error) {
    if (o.signal.aborted) return { ok: false, reason: 'aborted', error, attempts };
    if (deadline.aborted) return { ok: false, reason: 'timeout', error, attempts };
    return { ok: false, reason: 'error', error, attempts };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
