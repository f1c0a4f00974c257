/**
 * Provider-specific adapter behaviour that the shared contract (contract.test.ts) cannot express: Dify's app
 * variants and workflow mode, Coze's message kinds and envelopes, Ollama's NDJSON specifics. OpenAI's own
 * specifics are in openai.test.ts.
 */
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCozeAdapter } from '../../src/llm/coze.js';
import { createDifyAdapter, type DifyOptions } from '../../src/llm/dify.js';
import { createOllamaAdapter, type OllamaOptions } from '../../src/llm/ollama.js';
import { FOLLOWUPS, startFakeCoze, type FakeCoze } from '../fakes/coze.js';
import { startFakeDify, THOUGHT_MARKER, type FakeDify } from '../fakes/dify.js';
import { startFakeOllama, type FakeOllama } from '../fakes/ollama.js';
import { COZE_BOT, COZE_TOKEN, cps, DIFY_KEY, failure, never, OLLAMA_MODEL, req, SYSTEM, USER_ID } from './contract-drivers.js';

const Q = '你们周末营业吗？';
const A = '您好！我们周末也营业，营业时间是 9:00-18:00。';
const head = (s: string, n: number) => Array.from(s).slice(0, n).join('');

describe('dify adapter', () => {
  let fake: FakeDify;
  beforeEach(async () => {
    fake = await startFakeDify({ apiKey: DIFY_KEY });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (o: Partial<DifyOptions> = {}) => createDifyAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: DIFY_KEY, ...o });

  it('chat: sends query, user = the request userId, inputs {}, streaming, the key; no conversation_id on a first turn', async () => {
    await adapter().reply(req(Q), never());
    const [r] = fake.requests;
    expect(r).toMatchObject({ method: 'POST', path: '/v1/chat-messages' });
    expect(r?.headers.authorization).toBe(`Bearer ${DIFY_KEY}`);
    expect(r?.body).toMatchObject({ query: Q, inputs: {}, response_mode: 'streaming', user: USER_ID });
    expect(r?.body).not.toHaveProperty('conversation_id');
  });

  it('agent app: agent_message deltas make the answer, agent_thought text never does', async () => {
    fake.script({ kind: 'answer', variant: 'agent', text: A, chunkSize: 3 });
    const r = await adapter().reply(req(Q), never());
    expect(r.text).toBe(A);
    expect(r.text).not.toContain(THOUGHT_MARKER);
    expect(JSON.stringify(r)).not.toContain(THOUGHT_MARKER);
    expect(r.state).toEqual({ conversationId: fake.conversationsOf(USER_ID)[0]?.id });
  });

  it('chatflow app: workflow_*/node_* frames around the deltas; workflow_finished is not terminal, message_end is', async () => {
    fake.script({ kind: 'answer', variant: 'chatflow', text: A });
    const r = await adapter().reply(req(Q), never());
    expect(r).toMatchObject({ text: A, finishReason: 'stop', usage: { inputTokens: cps(Q), outputTokens: cps(A), totalTokens: cps(Q) + cps(A) } });
  });

  it('message_replace after the deltas replaces all text so far', async () => {
    const replaced = '抱歉，这个问题我无法回答。';
    fake.script({ kind: 'answer', text: '违规的原始回答', replaceWith: replaced });
    const r = await adapter().reply(req(Q), never());
    expect(r.text).toBe(replaced);
    expect(r.text).not.toContain('违规');
  });

  it('CRLF-framed SSE is read the same', async () => {
    fake.script({ kind: 'answer', text: A, crlf: true });
    expect((await adapter().reply(req(Q), never())).text).toBe(A);
  });

  it('an error event before any text → upstream with the provider code, NOT retryable: Dify recorded the question already', async () => {
    fake.script({ kind: 'error-event', afterDeltas: 0, code: 'provider_quota_exceeded', message: 'Your quota for the model has been exceeded.' });
    const e = await failure(adapter().reply(req(Q), never()));
    // Asking again would put the question into the conversation twice.
    expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: '' });
    expect(e.options.code).toBe('provider_quota_exceeded');
    expect(e.message).toContain('quota');
  });

  it('a stored conversation id Dify rejects with 400 invalid_param (not a uuid) is dropped and retried once', async () => {
    const r = await adapter().reply(req(Q, { conversationId: 'not-a-uuid' }), never());
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]?.body.conversation_id).toBe('not-a-uuid');
    expect(fake.requests[1]?.body).not.toHaveProperty('conversation_id');
    expect(r.state).toEqual({ conversationId: fake.conversationsOf(USER_ID)[0]?.id });
  });

  it('a 404 without a stored conversation is not_found and not retried', async () => {
    fake.script({ kind: 'status', status: 404 });
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'not_found', retryable: false, status: 404 });
    expect(fake.requests).toHaveLength(1);
  });

  describe('workflow mode', () => {
    const wf = () => adapter({ mode: 'workflow', outputKey: 'answer' });

    it('POST /workflows/run with inputs.query and user; the answer is outputs[outputKey]; stateless', async () => {
      fake.script({ kind: 'workflow', text: '流式的中间文本', outputs: { answer: A } });
      const r = await wf().reply(req(Q, { conversationId: 'ignored' }), never());
      expect(r).toEqual({
        text: A,
        state: null,
        finishReason: 'stop',
        usage: { inputTokens: null, outputTokens: null, totalTokens: cps(JSON.stringify({ query: Q })) + cps('流式的中间文本') },
      });
      const [sent] = fake.requests;
      expect(sent).toMatchObject({ method: 'POST', path: '/v1/workflows/run' });
      expect(sent?.body).toEqual({ inputs: { query: Q }, response_mode: 'streaming', user: USER_ID });
    });

    it('without the output key in outputs the streamed text_chunks are the answer', async () => {
      fake.script({ kind: 'workflow', text: A, outputs: { other: 'x' } });
      expect((await wf().reply(req(Q), never())).text).toBe(A);
    });

    it('workflow_finished with status failed → upstream naming the error, not retryable', async () => {
      fake.script({ kind: 'workflow', status: 'failed', error: 'Node LLM run failed: quota' });
      const e = await failure(wf().reply(req(Q), never()));
      expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: `Workflow:${Q}` });
      expect(e.message).toContain('Node LLM run failed: quota');
    });
  });
});

describe('coze adapter', () => {
  let fake: FakeCoze;
  beforeEach(async () => {
    fake = await startFakeCoze({ token: COZE_TOKEN, botId: COZE_BOT });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = () => createCozeAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiToken: COZE_TOKEN, botId: COZE_BOT });

  it('sends bot_id, user_id = userId, stream, the user turn as additional_messages; conversation_id only in the query', async () => {
    const a = adapter();
    const r1 = await a.reply(req(Q), never());
    await a.reply(req('还有别的吗', r1.state), never());
    const [first, second] = fake.requests;
    expect(first).toMatchObject({ method: 'POST', path: '/v3/chat', query: {} });
    expect(first?.headers.authorization).toBe(`Bearer ${COZE_TOKEN}`);
    expect(first?.body).toEqual({
      bot_id: COZE_BOT,
      user_id: USER_ID,
      stream: true,
      auto_save_history: true,
      additional_messages: [{ role: 'user', content: Q, content_type: 'text', type: 'question' }],
    });
    expect(second?.query).toEqual({ conversation_id: r1.state?.conversationId });
    expect(second?.body).not.toHaveProperty('conversation_id');
  });

  it('several answer messages are joined with a blank line', async () => {
    fake.script({ kind: 'answer', answers: ['第一段：营业时间 9:00-18:00。', '第二段：周末也营业。'] });
    expect((await adapter().reply(req(Q), never())).text).toBe('第一段：营业时间 9:00-18:00。\n\n第二段：周末也营业。');
  });

  it('follow_up, verbose and reasoning_content never reach the text', async () => {
    fake.script({ kind: 'answer', text: A, reasoning: 'REASONING-SECRET 用户问营业时间' });
    const r = await adapter().reply(req(Q), never());
    expect(r.text).toBe(A);
    for (const secret of ['REASONING-SECRET', 'FOLLOWUP-SECRET', 'generate_answer_finish', ...FOLLOWUPS]) expect(JSON.stringify(r)).not.toContain(secret);
  });

  it('a stream without the final done event still succeeds after chat.completed', async () => {
    fake.script({ kind: 'answer', text: A, noDone: true });
    const r = await adapter().reply(req(Q), never());
    expect(r).toMatchObject({ text: A, finishReason: 'stop', usage: { inputTokens: cps(Q), outputTokens: cps(A), totalTokens: cps(Q) + cps(A) } });
  });

  it('CRLF-framed, no-space event:/data: lines are read the same', async () => {
    fake.script({ kind: 'answer', text: A, crlf: true });
    expect((await adapter().reply(req(Q), never())).text).toBe(A);
  });

  it('conversation.chat.failed → upstream with last_error code and message; never retried (Coze saved the question)', async () => {
    fake.script({ kind: 'chat-failed', afterDeltas: 2, code: 4028, msg: 'bot quota exceeded' }, { kind: 'chat-failed', afterDeltas: 0 });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: head(`Coze:${Q}`, 8) });
    expect(e.options.code).toBe('4028');
    expect(e.message).toContain('bot quota exceeded');
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'upstream', retryable: false, partialText: '' });
  });

  it('requires_action (a client-side tool call) → error, not retryable', async () => {
    fake.script({ kind: 'requires-action' });
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'bad_request', retryable: false, partialText: '' });
  });

  it('an error event with empty data after chat.created → upstream, not retryable (the turn exists)', async () => {
    fake.script({ kind: 'error-event', afterDeltas: 0 });
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'upstream', retryable: false, partialText: '' });
  });

  it('HTTP 200 envelope code 4000 → bad_request, not retryable, provider code kept', async () => {
    fake.script({ kind: 'envelope', code: 4000, msg: 'invalid parameter' });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'bad_request', retryable: false, status: null });
    expect(e.options.code).toBe('4000');
    expect(e.message).toContain('invalid parameter');
  });
});

describe('ollama adapter', () => {
  let fake: FakeOllama;
  beforeEach(async () => {
    fake = await startFakeOllama({ models: [OLLAMA_MODEL] });
  });
  afterEach(async () => {
    await fake.close();
  });
  const adapter = (o: Partial<OllamaOptions> = {}) =>
    createOllamaAdapter({ http: axios.create({ baseURL: fake.baseUrl }), model: OLLAMA_MODEL, systemPrompt: SYSTEM, ...o });

  it('sends model, stream, the system prompt, the stored history and the user text as messages', async () => {
    const history = [{ role: 'user', content: '在吗' }, { role: 'assistant', content: '在的' }];
    await adapter().reply(req(Q, { history }), never());
    const [r] = fake.requests;
    expect(r).toMatchObject({ method: 'POST', path: '/api/chat' });
    expect(r?.body).toEqual({ model: OLLAMA_MODEL, stream: true, messages: [{ role: 'system', content: SYSTEM }, ...history, { role: 'user', content: Q }] });
  });

  it('keep_alive is sent when configured (a duration as is, an integer as a number) and left out otherwise', async () => {
    await adapter({ keepAlive: '30m' }).reply(req(Q), never());
    await adapter({ keepAlive: '-1' }).reply(req(Q), never());
    await adapter({ keepAlive: null }).reply(req(Q), never());
    expect(fake.requests[0]?.body.keep_alive).toBe('30m');
    expect(fake.requests[1]?.body.keep_alive).toBe(-1);
    expect(fake.requests[2]?.body).not.toHaveProperty('keep_alive');
  });

  it('an {"error"} line under HTTP 200 → upstream naming the error; partial text makes it not retryable', async () => {
    fake.script({ kind: 'error-line', afterDeltas: 0, error: 'model runner has unexpectedly stopped' }, { kind: 'error-line', afterDeltas: 3 });
    const e = await failure(adapter().reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
    expect(e.message).toContain('model runner has unexpectedly stopped');
    expect(await failure(adapter().reply(req(Q), never()))).toMatchObject({ kind: 'upstream', retryable: false, partialText: head(`Ollama:${Q}`, 12) });
  });

  it('message.thinking never reaches the text nor the stored history', async () => {
    fake.script({ kind: 'answer', text: A, thinking: 'THINKING-SECRET 用户在问营业时间' });
    const r = await adapter().reply(req(Q), never());
    expect(r.text).toBe(A);
    expect(r.state).toEqual({ history: [{ role: 'user', content: Q }, { role: 'assistant', content: A }] });
    expect(JSON.stringify(r)).not.toContain('THINKING-SECRET');
  });

  it('done_reason length → finishReason length, text kept', async () => {
    fake.script({ kind: 'answer', text: '回答被截', doneReason: 'length' });
    expect(await adapter().reply(req(Q), never())).toMatchObject({ text: '回答被截', finishReason: 'length' });
  });

  it('a model that is not pulled (404) → not_found, not retryable, with the pull hint', async () => {
    const e = await failure(adapter({ model: 'llama9:70b' }).reply(req(Q), never()));
    expect(e).toMatchObject({ kind: 'not_found', retryable: false, status: 404 });
    expect(e.message).toContain('not found');
    expect(e.message).toContain('ollama pull llama9:70b');
  });
});
