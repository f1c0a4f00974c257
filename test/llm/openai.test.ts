import { createServer } from 'node:http';
import axios from 'axios';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LlmError } from '../../src/errors.js';
import { createOpenAiAdapter, type OpenAiOptions } from '../../src/llm/openai.js';
import type { ConversationState, ReplyRequest } from '../../src/llm/types.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';

const KEY = 'sk-test-secret-123';
const MODEL = 'gpt-4o-mini';
const SYSTEM = '你是客服助手。';
const USER_ID = 'kf:wkAAA:wmBBB';

let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await startFakeOpenAI({ apiKey: KEY, model: MODEL });
});
afterEach(async () => {
  await fake.close();
});

function adapter(extra: Partial<OpenAiOptions> = {}) {
  return createOpenAiAdapter({ http: axios.create({ baseURL: fake.baseUrl }), apiKey: KEY, model: MODEL, systemPrompt: SYSTEM, ...extra });
}
const req = (text: string, state: ConversationState | null = null, userId = USER_ID): ReplyRequest => ({ userId, text, state, traceId: 'msg-1' });
const never = () => new AbortController().signal;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}
/** The LlmError a call rejects with (fails the test if it resolves or rejects with something else). */
async function failure(p: Promise<unknown>): Promise<LlmError> {
  const e = await p.then(
    (v) => new Error(`expected a failure, got ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LlmError);
  return e as LlmError;
}

describe('openai adapter: success', () => {
  it('rebuilds a Chinese answer exactly from the deltas, with usage, finish reason and the new history', async () => {
    const answer = '您好！我们的营业时间是每天 9:00–18:00。😀👍🏽 欢迎光临';
    fake.script({ kind: 'answer', text: answer, chunkSize: 3 });
    const r = await adapter().reply(req('营业时间？'), never());
    expect(r.text).toBe(answer);
    expect(r.finishReason).toBe('stop');
    const prompt = Array.from(SYSTEM).length + Array.from('营业时间？').length;
    const completion = Array.from(answer).length;
    expect(r.usage).toEqual({ inputTokens: prompt, outputTokens: completion, totalTokens: prompt + completion });
    expect(r.state).toEqual({
      history: [
        { role: 'user', content: '营业时间？' },
        { role: 'assistant', content: answer },
      ],
    });
  });

  it('sends the key, stream flags, model, system prompt, history, user text and a hashed user id', async () => {
    const state = { history: [{ role: 'user', content: '在吗' }, { role: 'assistant', content: '在的' }] };
    await adapter().reply(req('多少钱？', state), never());
    await adapter().reply(req('hi'), never());
    await adapter().reply(req('hi', null, 'kf:wkAAA:wmOTHER'), never());
    const [first, second, third] = fake.requests;
    expect(first?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(first?.headers['content-type']).toMatch(/^application\/json/);
    expect(first?.body).toMatchObject({ model: MODEL, stream: true, stream_options: { include_usage: true } });
    expect(first?.body.messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: '在吗' },
      { role: 'assistant', content: '在的' },
      { role: 'user', content: '多少钱？' },
    ]);
    const user = first?.body.user as string;
    expect(user).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(first?.body)).not.toContain('wmBBB');
    expect(second?.body.user).toBe(user); // stable per customer
    expect(third?.body.user).not.toBe(user);
  });

  it('omits the system message when there is no system prompt', async () => {
    await adapter({ systemPrompt: null }).reply(req('hi'), never());
    expect(fake.requests[0]?.body.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('caps the history it carries: 4 turns with maxTurns 2 → only the last 2 are sent next time', async () => {
    const a = adapter({ history: { maxTurns: 2, maxChars: 1000 } });
    let state: ConversationState | null = null;
    for (const q of ['q1', 'q2', 'q3', 'q4']) state = (await a.reply(req(q, state), never())).state;
    await a.reply(req('q5', state), never());
    expect(fake.requests[4]?.body.messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: 'q3' },
      { role: 'assistant', content: 'AI:q3' },
      { role: 'user', content: 'q4' },
      { role: 'assistant', content: 'AI:q4' },
      { role: 'user', content: 'q5' },
    ]);
  });

  it('never shows nor stores DeepSeek reasoning_content', async () => {
    const reasoning = '用户在问价格，我需要先想一想REASONING';
    fake.script({ kind: 'answer', text: '价格是 99 元。', reasoning, chunkSize: 2 });
    const a = adapter();
    const r = await a.reply(req('多少钱'), never());
    expect(r.text).toBe('价格是 99 元。');
    expect(JSON.stringify(r.state)).not.toContain('REASONING');
    expect(r.state).toEqual({ history: [{ role: 'user', content: '多少钱' }, { role: 'assistant', content: '价格是 99 元。' }] });
    await a.reply(req('好的', r.state), never());
    expect(JSON.stringify(fake.requests[1]?.body)).not.toMatch(/REASONING|reasoning/);
  });

  it('maps finish reasons: length → length, content_filter → filtered', async () => {
    fake.script({ kind: 'answer', text: 'cut', finishReason: 'length' }, { kind: 'answer', text: '', finishReason: 'content_filter' });
    expect((await adapter().reply(req('a'), never())).finishReason).toBe('length');
    const r = await adapter().reply(req('b'), never());
    expect(r).toMatchObject({ text: '', finishReason: 'filtered' });
  });

  it('receives a >64 KB answer whole, including frames larger than 64 KB', async () => {
    const text = Array.from({ length: 12_000 }, (_, i) => `第${i}句。😀`).join('');
    expect(Buffer.byteLength(text)).toBeGreaterThan(3 * 64 * 1024);
    fake.script({ kind: 'answer', text, chunkSize: 30_000 });
    const r = await adapter().reply(req('long'), never());
    expect(r.text.length).toBe(text.length);
    expect(r.text).toBe(text);
  });

  it('accepts a server that ignores stream:true and answers one JSON document', async () => {
    // A real axios interceptor makes the request non-streamed, so the fake answers `chat.completion` JSON.
    const http = axios.create({ baseURL: fake.baseUrl });
    http.interceptors.request.use((c) => ({ ...c, data: { ...(c.data as object), stream: false } }));
    fake.script({ kind: 'answer', text: '整段回答' }, { kind: 'truncate', afterDeltas: 1 });
    const a = createOpenAiAdapter({ http, apiKey: KEY, model: MODEL, systemPrompt: null });
    const r = await a.reply(req('q'), never());
    expect(fake.requests[0]?.body.stream).toBe(false);
    expect(r).toEqual({
      text: '整段回答',
      finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 4, totalTokens: 5 },
      state: { history: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '整段回答' }] },
      requestId: expect.stringMatching(/^req_/),
    });
    expect((await failure(a.reply(req('q'), never()))).kind).toBe('protocol'); // half a JSON body
  });
});

describe('openai adapter: HTTP errors', () => {
  it('401 → auth, not retryable, with status and provider code', async () => {
    const e = await failure(adapter({ apiKey: 'sk-wrong' }).reply(req('hi'), never()));
    expect(e).toMatchObject({ kind: 'auth', retryable: false, status: 401 });
    expect(e.options.code).toBe('invalid_api_key');
    expect(e.message).toContain('Incorrect API key provided');
    expect(e.message).not.toContain('sk-wrong');
  });

  it('429 with retry-after → rate_limit, retryable, retryAfterMs', async () => {
    fake.script({ kind: 'status', status: 429, retryAfterS: 7 });
    const e = await failure(adapter().reply(req('hi'), never()));
    expect(e).toMatchObject({ kind: 'rate_limit', retryable: true, status: 429 });
    expect(e.options.retryAfterMs).toBe(7000);
    expect(e.options.code).toBe('rate_limit_exceeded');
  });

  it('500 → upstream retryable; 400 → bad_request; 404 (unknown model) → not_found', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 400 });
    expect(await failure(adapter().reply(req('a'), never()))).toMatchObject({ kind: 'upstream', retryable: true, status: 500 });
    expect(await failure(adapter().reply(req('b'), never()))).toMatchObject({ kind: 'bad_request', retryable: false, status: 400 });
    const e = await failure(adapter({ model: 'gpt-nope' }).reply(req('c'), never()));
    expect(e).toMatchObject({ kind: 'not_found', retryable: false, status: 404 });
    expect(e.options.code).toBe('model_not_found');
  });

  it('a connection refused is a retryable upstream error', async () => {
    await fake.close();
    const e = await failure(adapter().reply(req('a'), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
  });
});

describe('openai adapter: broken streams', () => {
  it('truncate after 2 deltas → truncated, partial text, not retryable', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 2 });
    const e = await failure(adapter().reply(req('abcdefghij'), never()));
    expect(e).toMatchObject({ kind: 'truncated', retryable: false, partialText: 'AI:abcde' });
  });

  it('truncate after 0 deltas → truncated, retryable', async () => {
    fake.script({ kind: 'truncate', afterDeltas: 0 });
    expect(await failure(adapter().reply(req('abc'), never()))).toMatchObject({ kind: 'truncated', retryable: true, partialText: '' });
  });

  it('socket dropped after 2 deltas → failure with partial text, not retryable', async () => {
    fake.script({ kind: 'drop', afterDeltas: 2 });
    const e = await failure(adapter().reply(req('abcdefghij'), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: 'AI:abcde' });
  });

  it('socket dropped before any delta → retryable', async () => {
    fake.script({ kind: 'drop', afterDeltas: 0 });
    expect(await failure(adapter().reply(req('abc'), never()))).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
  });

  it('an error frame mid-stream is a failure (retryable only while nothing streamed)', async () => {
    fake.script({ kind: 'error-frame', afterDeltas: 2 }, { kind: 'error-frame', afterDeltas: 0 });
    const e = await failure(adapter().reply(req('abcdefghij'), never()));
    expect(e).toMatchObject({ kind: 'upstream', retryable: false, partialText: 'AI:abcde' });
    expect(e.message).toContain('The server had an error');
    expect(await failure(adapter().reply(req('x'), never()))).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
  });

  it('a frame of invalid JSON → protocol, not retryable', async () => {
    fake.script({ kind: 'invalid-json', afterDeltas: 1 }, { kind: 'invalid-json', afterDeltas: 0 });
    expect(await failure(adapter().reply(req('abcdefghij'), never()))).toMatchObject({ kind: 'protocol', retryable: false, partialText: 'AI:a' });
    expect(await failure(adapter().reply(req('abc'), never()))).toMatchObject({ kind: 'protocol', retryable: false });
  });

  it('headers then silence: the idle timer fails the call fast as retryable upstream and closes the socket', async () => {
    fake.script({ kind: 'hang' });
    const t0 = performance.now();
    const e = await failure(adapter({ idleMs: 300 }).reply(req('hi'), never()));
    const elapsed = performance.now() - t0;
    expect(e).toMatchObject({ kind: 'upstream', retryable: true, partialText: '' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1000);
    await until(() => fake.requests[0]?.closedByClient === true);
    expect(fake.requests[0]?.closedByClient).toBe(true);
  });

  it('a slow stream that is never silent for idleMs succeeds (the idle timer is per chunk, not per call)', async () => {
    // deltas every 200 ms with idleMs 300: slow but never silent for 300 ms → succeeds
    fake.script({ kind: 'answer', text: 'abcdefgh', chunkSize: 2, delayMs: 200 });
    expect((await adapter({ idleMs: 300 }).reply(req('x'), never())).text).toBe('abcdefgh');
  });
});

describe('openai adapter: terminal event', () => {
  /** Serves `frames` as SSE `data:` lines then ends the body; the fake cannot leave out just one half of the terminal. */
  async function rawReply(frames: string[], keepOpen = false, idleMs?: number) {
    const srv = createServer((q, res) => {
      q.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const body = frames.map((f) => `data: ${f}\n\n`).join('');
      if (keepOpen) res.write(body);
      else res.end(body);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as { port: number };
    const http = axios.create({ baseURL: `http://127.0.0.1:${port}/v1` });
    try {
      return await createOpenAiAdapter({ http, apiKey: KEY, model: MODEL, systemPrompt: null, idleMs }).reply(req('q'), never());
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  }
  const delta = (content: string, finish: string | null = null) => JSON.stringify({ choices: [{ delta: { content }, finish_reason: finish }] });

  it('[DONE] without any finish_reason → truncated', async () => {
    const e = await failure(rawReply([delta('半'), delta('句'), '[DONE]']));
    expect(e).toMatchObject({ kind: 'truncated', retryable: false, partialText: '半句' });
  });

  it('finish_reason without [DONE] → truncated', async () => {
    const e = await failure(rawReply([delta('整句'), delta('', 'stop')]));
    expect(e).toMatchObject({ kind: 'truncated', retryable: false, partialText: '整句' });
  });

  it('finish_reason then [DONE] without a usage chunk → ok with usage null; frames after [DONE] are ignored', async () => {
    const r = await rawReply([delta('好'), delta('', 'stop'), '[DONE]', delta('LEAK')]);
    expect(r).toMatchObject({ text: '好', usage: null, finishReason: 'stop' });
  });

  it('a server that keeps the stream open after [DONE] still gives the answer at once (no idle timeout)', async () => {
    const started = performance.now();
    const r = await rawReply([delta('完整'), delta('', 'stop'), '[DONE]'], true, 2000);
    expect(r).toMatchObject({ text: '完整', finishReason: 'stop' });
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('openai adapter: caller abort', () => {
  it('abort mid-stream → aborted with the partial text, the socket closes, no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => void unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      fake.script({ kind: 'answer', text: 'ABCDEFGHIJKL', chunkSize: 4, delayMs: 1500 });
      const ac = new AbortController();
      const t0 = performance.now();
      const p = adapter().reply(req('q'), ac.signal);
      await fake.waitForRequests(1);
      await sleep(200); // the first delta (split over two writes 15 ms apart) is in; the second is 1.5 s away
      ac.abort();
      const e = await failure(p);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(e).toMatchObject({ kind: 'aborted', retryable: false, partialText: 'ABCD' });
      await until(() => fake.requests[0]?.closedByClient === true);
      expect(fake.requests[0]?.closedByClient).toBe(true);
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('abort before the headers arrive → aborted and the socket closes; an already aborted signal → aborted', async () => {
    fake.script({ kind: 'answer', firstByteDelayMs: 2000 });
    const ac = new AbortController();
    const p = adapter().reply(req('q'), ac.signal);
    await fake.waitForRequests(1);
    ac.abort();
    expect(await failure(p)).toMatchObject({ kind: 'aborted', partialText: '' });
    await until(() => fake.requests[0]?.closedByClient === true);
    expect(fake.requests[0]?.closedByClient).toBe(true);
    expect(await failure(adapter().reply(req('q'), AbortSignal.abort()))).toMatchObject({ kind: 'aborted' });
  });
});
