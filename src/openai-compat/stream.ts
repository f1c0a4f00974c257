import type { FastifyReply } from 'fastify';
import type { Completion } from './complete.js';
import { openAiError, usageOf } from './shapes.js';

/**
 * Streams one completion as OpenAI's SSE `chat.completion.chunk`s. The status and headers go out with the first
 * visible text, so a failure before it is still an ordinary 502 JSON error; a failure after it is an `error` event,
 * then `[DONE]`. The agent's snapshots (the whole visible answer so far) become deltas; a provider that rewrites
 * earlier text (Dify's message_replace) cannot take back what was sent, so only what extends it is sent.
 * @param run asks the agent, reporting snapshots to the callback it is given
 */
export async function streamCompletion(
  reply: FastifyReply,
  meta: { id: string; model: string; includeUsage: boolean },
  run: (onText: (visibleSoFar: string) => void) => Promise<Completion>,
): Promise<Completion> {
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id: meta.id, object: 'chat.completion.chunk', created, model: meta.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
  let shown = '';
  let started = false;
  const send = (text: string) => {
    if (!text.startsWith(shown) || text.length === shown.length) return;
    if (!started) {
      started = true;
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
      reply.raw.write(chunk({ role: 'assistant', content: '' }, null));
    }
    reply.raw.write(chunk({ content: text.slice(shown.length) }, null));
    shown = text;
  };
  const result = await run(send);
  if (!result.ok && !started) {
    void reply.code(502).send(openAiError(result.message, 'api_error', result.timeout ? 'timeout' : 'upstream_error'));
    return result;
  }
  if (result.ok) send(result.text);
  if (!result.ok) {
    reply.raw.write(`data: ${JSON.stringify(openAiError(result.message, 'api_error', result.timeout ? 'timeout' : 'upstream_error'))}\n\n`);
  } else {
    reply.raw.write(chunk({}, result.finishReason));
    if (meta.includeUsage) reply.raw.write(`data: ${JSON.stringify({ id: meta.id, object: 'chat.completion.chunk', created, model: meta.model, choices: [], usage: usageOf(result) })}\n\n`);
  }
  reply.raw.end('data: [DONE]\n\n');
  return result;
}
