import type { Completion } from './complete.js';

/** OpenAI's error body. */
export function openAiError(message: string, type: string, code: string | null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** OpenAI's usage block from the provider's figures (0 when it reported none). */
export function usageOf(r: Extract<Completion, { ok: true }>) {
  const prompt = r.usage?.inputTokens ?? 0;
  const completion = r.usage?.outputTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: r.usage?.totalTokens ?? prompt + completion };
}

