import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyInstance } from 'fastify';
import { bearerMatches } from '../http/bearer.js';
import type { IdentityStore } from '../identity/types.js';
import type { AgentRouter } from '../pipeline/agents.js';
import type { MessageRecorder } from '../pipeline/recorder.js';
import type { Store } from '../store/types.js';
import { complete, type Completion } from './complete.js';
import { ChatRequestError, parseChatRequest } from './request.js';
import { openAiError, usageOf } from './shapes.js';
import { streamCompletion } from './stream.js';

/** What `/v1` needs (deps.ts builds it; absent keys: the routes are not registered and answer 404). */
export interface OpenAiCompatDeps {
  /** OPENAI_COMPAT_API_KEYS in order: the position from 1 is the caller's account `key<N>` */
  keys: string[];
  agents: AgentRouter;
  identities: IdentityStore;
  recorder: MessageRecorder;
  store: Store;
}

/** A `/v1` body may be this large (long conversations, pasted documents); more is 413. */
export const MAX_V1_BODY_BYTES = 1024 * 1024;

/**
 * `GET /v1/models` and `POST /v1/chat/completions` (docs/configuration.md "OpenAI-compatible API"): the bridge's
 * agents for any OpenAI client (Open WebUI, the `openai` SDK). Bearer key from OPENAI_COMPAT_API_KEYS (401), model =
 * an agent name (404), OpenAI's error shape, streaming as `chat.completion.chunk` SSE ending `data: [DONE]`. Calls
 * are logged with channel `openai-compat`, account `key<N>` and the request's `user`.
 */
export async function openAiCompatPlugin(app: FastifyInstance, d: OpenAiCompatDeps): Promise<void> {
  app.decorateRequest('v1Account', '');
  app.addHook('onRequest', async (request, reply) => {
    const index = d.keys.findIndex((k) => bearerMatches(request.headers.authorization, k));
    if (index === -1) {
      return reply.code(401).send(openAiError('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'));
    }
    (request as unknown as { v1Account: string }).v1Account = `key${index + 1}`;
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(openAiError(`the body is over ${MAX_V1_BODY_BYTES} bytes`, 'invalid_request_error', 'request_too_large'));
    }
    if (err instanceof ChatRequestError) return reply.code(400).send(openAiError(err.message, 'invalid_request_error', null, err.param));
    request.log.error({ err }, '/v1 request failed');
    return reply.code(500).send(openAiError('internal error', 'api_error', null));
  });

  app.get('/models', async () => ({
    object: 'list',
    data: d.agents.all.map((a) => ({ id: a.name, object: 'model', created: 0, owned_by: 'wechat-ai-bridge' })),
  }));

  app.post('/chat/completions', { bodyLimit: MAX_V1_BODY_BYTES }, async (request, reply) => {
    const req = parseChatRequest(typeof request.body === 'string' ? request.body : '');
    const agent = d.agents.named(req.model);
    if (!agent) return reply.code(404).send(openAiError(`The model \`${req.model}\` does not exist`, 'invalid_request_error', 'model_not_found', 'model'));
    const account = (request as unknown as { v1Account: string }).v1Account;
    const place = { channel: 'openai-compat' as const, account, externalId: req.user };
    const customerId = await d.identities.resolve({ ...place }).catch(() => '');
    const id = `chatcmpl-${randomBytes(12).toString('base64url')}`;
    d.recorder.inbound({ ...place, msgid: id, type: 'text', content: req.text });
    const hungUp = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) hungUp.abort(new Error('client went away'));
    });
    const run = (onText?: (s: string) => void) => complete(d, agent, req, { account, customerId }, hungUp.signal, onText);
    let result: Completion;
    if (req.stream) result = await streamCompletion(reply, { id, model: agent.name, includeUsage: req.includeUsage }, run);
    else {
      result = await run();
      if (result.ok) void reply.send(completionBody(id, agent.name, result));
      else void reply.code(502).send(openAiError(result.message, 'api_error', result.timeout ? 'timeout' : 'upstream_error'));
    }
    record(d.recorder, place, id, agent.name, result);
    return reply;
  });
}

function completionBody(id: string, model: string, r: Extract<Completion, { ok: true }>) {
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finishReason }],
    usage: usageOf(r),
  };
}

function record(recorder: MessageRecorder, place: { channel: 'openai-compat'; account: string; externalId: string }, id: string, agent: string, r: Completion): void {
  if (r.ok) {
    recorder.outbound({ ...place, partId: `${id}_0`, kind: 'answer', content: r.text, status: 'sent', replyTo: id, agent });
    recorder.settle({ ...place, msgid: id }, { status: 'answered', agent, inputTokens: r.usage?.inputTokens ?? null, outputTokens: r.usage?.outputTokens ?? null });
  } else recorder.settle({ ...place, msgid: id }, { status: 'failed', agent });
}

