import { isAxiosError } from 'axios';
import { LlmError } from '../errors.js';

/**
 * Translates a provider's HTTP error answer into an LlmError: 401/403 auth, 404 not_found, 429 rate_limit
 * (retryable, honouring `retry-after` seconds), other 4xx bad_request, 5xx upstream (retryable).
 * @param bodyText the (capped) error body; its `error.message`/`message` becomes part of the message
 */
export function llmErrorFromHttp(provider: string, status: number, bodyText: string, retryAfter?: string): LlmError {
  const detail = extractMessage(bodyText);
  const message = `${provider}: HTTP ${status}${detail ? ` ${detail}` : ''}`;
  const retryAfterS = retryAfter && /^\d+(\.\d+)?$/.test(retryAfter.trim()) ? Number(retryAfter) : null;
  const base = { status, code: extractCode(bodyText) };
  if (status === 401 || status === 403) return new LlmError('auth', message, base);
  if (status === 404) return new LlmError('not_found', message, base);
  if (status === 429) {
    return new LlmError('rate_limit', message, {
      ...base,
      // OpenAI's "insufficient_quota" is a billing problem: no retry helps.
      retryable: base.code !== 'insufficient_quota',
      retryAfterMs: retryAfterS === null ? null : retryAfterS * 1000,
    });
  }
  if (status >= 500) return new LlmError('upstream', message, { ...base, retryable: true });
  return new LlmError('bad_request', message, base);
}

/**
 * Translates a failure to get any answer (connection refused/reset, DNS, abort) into an LlmError.
 * Nothing has streamed at that point, so network errors are retryable; an abort is `aborted`.
 */
export function llmErrorFromTransport(provider: string, e: unknown, signal: AbortSignal): LlmError {
  if (e instanceof LlmError) return e;
  if (signal.aborted) return new LlmError('aborted', `${provider}: request aborted`);
  const code = isAxiosError(e) ? (e.code ?? 'ERR') : e instanceof Error ? e.name : 'ERR';
  // The host (never the path or query: they may carry keys), so "ENOTFOUND" says which name did not resolve.
  const host = isAxiosError(e) ? hostOf(e.config?.url, e.config?.baseURL) : null;
  return new LlmError('upstream', `${provider}: transport failure ${code}${host ? ` reaching ${host}` : ''}`, { retryable: true });
}

/**
 * Translates a failure while reading a stream; partial text makes it non-retryable (never resend half an answer).
 * @param accepted the provider already recorded the turn (a Coze chat or Dify message exists): asking again would
 *   put the question into the bot's conversation twice, so the failure is final
 */
export function llmErrorFromStream(provider: string, e: unknown, signal: AbortSignal, partialText: string, accepted = false): LlmError {
  if (signal.aborted) return new LlmError('aborted', `${provider}: stream aborted`, { partialText });
  const retryable = (r: boolean) => r && partialText === '' && !accepted;
  if (e instanceof LlmError) {
    return new LlmError(e.kind, e.message, { ...e.options, partialText, retryable: retryable(e.retryable) });
  }
  const code = (e as { code?: string } | null)?.code ?? (e instanceof Error ? e.message : 'ERR');
  return new LlmError('upstream', `${provider}: stream failed (${code})`, { retryable: retryable(true), partialText });
}

function parse(bodyText: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(bodyText);
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function extractMessage(bodyText: string): string {
  const v = parse(bodyText);
  const err = v?.error;
  const msg = err && typeof err === 'object' ? (err as Record<string, unknown>).message : (err ?? v?.message);
  return typeof msg === 'string' ? msg.slice(0, 300) : bodyText.slice(0, 200);
}

function extractCode(bodyText: string): string | null {
  const v = parse(bodyText);
  const err = v?.error;
  const code = err && typeof err === 'object' ? (err as Record<string, unknown>).code : v?.code;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : null;
}

/** `host[:port]` of a request URL (resolved against its base), or null. */
function hostOf(url: string | undefined, base: string | undefined): string | null {
  try {
    return new URL(url ?? '', base).host || null;
  } catch {
    return null;
  }
}
