/**
 * Reasoning models served through Dify, vLLM-style OpenAI-compatible servers or older Ollama builds put their
 * chain of thought inside the answer as `<think>…</think>` before the reply. The customer must never see it.
 * @returns the answer without leading think blocks; null when a think block never closes (the answer is only
 *   reasoning, cut off: treat it as a failure rather than send it)
 */
export function stripReasoning(text: string): string | null {
  let rest = text;
  for (;;) {
    const m = /^\s*<think(?:ing)?>/i.exec(rest);
    if (!m) return rest;
    const close = /<\/think(?:ing)?>/i.exec(rest.slice(m[0].length));
    if (!close) return null;
    rest = rest.slice(m[0].length + close.index + close[0].length);
  }
}
