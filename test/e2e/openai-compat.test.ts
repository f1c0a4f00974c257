/**
 * The OpenAI-compatible API (docs/configuration.md "OpenAI-compatible API") driven by the official `openai` npm
 * client: the agents as models, chat completions streamed and not, OpenAI's error shapes (bad key, unknown model,
 * malformed and oversized bodies, a failing agent before and after the stream started), conversations kept per key
 * and user for stateful agents, and every call in the message log as channel `openai-compat`.
 */
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeDify, type FakeDify } from '../fakes/dify.js';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.js';
import { startHarness, type Harness } from '../helpers/harness.js';

const KEYS = 'v1-key-one-0123456789,v1-key-two-0123456789';
const client = (h: Harness, apiKey = 'v1-key-two-0123456789') => new OpenAI({ apiKey, baseURL: `${h.url}/v1`, maxRetries: 0 });

describe('/v1 (OpenAI-compatible)', () => {
  let h: Harness | undefined;
  let llm: FakeOpenAI | undefined;
  let dify: FakeDify | undefined;
  afterEach(async () => {
    await h?.close();
    await llm?.close();
    await dify?.close();
    h = llm = dify = undefined;
  });

  it('is off without OPENAI_COMPAT_API_KEYS (404); a wrong key is 401 in OpenAI’s shape', async () => {
    h = await startHarness();
    expect((await fetch(`${h.url}/v1/models`)).status).toBe(404);
    await h.close();
    h = await startHarness({ env: { OPENAI_COMPAT_API_KEYS: KEYS } });
    const err = await client(h, 'sk-wrong').models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_api_key');
  });

  it('lists the agents; the echo agent answers streamed and not; the call is logged as openai-compat key2', async () => {
    h = await startHarness({ env: { OPENAI_COMPAT_API_KEYS: KEYS, ADMIN_TOKEN: 'admin-token-0123456789abcdef' } });
    const c = client(h);
    expect((await c.models.list()).data.map((m) => [m.id, m.object, m.owned_by])).toEqual([['default', 'model', 'wechat-ai-bridge']]);
    const done = await c.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: '你好 /v1' }], user: 'alice' });
    expect(done.object).toBe('chat.completion');
    expect(done.choices[0]?.message).toMatchObject({ role: 'assistant', content: '你好 /v1' });
    expect(done.choices[0]?.finish_reason).toBe('stop');
    const stream = await c.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: '流式回答' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('流式回答');
    await h.deps.data.log.flush();
    await new Promise((r) => setTimeout(r, 100));
    await h.deps.data.log.flush();
    const rows = await h.deps.data.log.query({ channel: 'openai-compat', limit: 10, cursor: null });
    expect(rows.items.find((r) => r.direction === 'in' && r.content === '你好 /v1')).toMatchObject({ account: 'key2', externalId: 'alice', status: 'answered' });
    expect(rows.items.find((r) => r.direction === 'out' && r.content === '你好 /v1')).toMatchObject({ type: 'answer', status: 'sent' });
  });

  it('an OpenAI-compatible agent streams deltas and gets the caller’s earlier turns; usage is passed on', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-up' });
    h = await startHarness({ env: { OPENAI_COMPAT_API_KEYS: KEYS, LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-up' } });
    const c = client(h);
    const stream = await c.chat.completions.create({
      model: 'default',
      messages: [
        { role: 'system', content: 'ignored: the agent has its own' },
        { role: 'user', content: '第一问' },
        { role: 'assistant', content: '第一答' },
        { role: 'user', content: '第二问' },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(deltas.join('')).toBe('AI:第二问');
    expect(deltas.length).toBeGreaterThan(1);
    expect(usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    const sent = (llm.requests.at(-1)?.body.messages as Array<{ role: string; content: string }>).filter((m) => m.role !== 'system');
    expect(sent.map((m) => m.content)).toEqual(['第一问', '第一答', '第二问']);
  });

  it('errors: unknown model 404, malformed 400, over 1 MiB 413, a failing agent 502 (before the stream) or an error event (after)', async () => {
    llm = await startFakeOpenAI({ apiKey: 'sk-up' });
    h = await startHarness({ env: { OPENAI_COMPAT_API_KEYS: KEYS, LLM_PROVIDER: 'openai', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-up', LLM_TIMEOUT_MS: '3000' } });
    const c = client(h);
    const notFound = await c.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');
    const post = (body: string) =>
      fetch(`${h!.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer v1-key-one-0123456789', 'content-type': 'application/json' }, body });
    const bad = await post('{"model": "default", "messages": ');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const big = await post(JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024) }] }));
    expect(big.status).toBe(413);
    llm.setDefault({ kind: 'status', status: 500 });
    const failed = await c.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(OpenAI.APIError);
    expect((failed as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    llm.setDefault({ kind: 'drop', afterDeltas: 2 });
    const res = await post(JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'x' }], stream: true }));
    expect(res.status).toBe(200);
    const raw = await res.text();
    expect(raw).toMatch(/data: \{"error":\{/);
    expect(raw.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('a stateful agent (Dify) keeps one conversation per key and user', async () => {
    dify = await startFakeDify({ apiKey: 'app-v1' });
    h = await startHarness({ env: { OPENAI_COMPAT_API_KEYS: KEYS, LLM_PROVIDER: 'dify', DIFY_BASE_URL: dify.baseUrl, DIFY_API_KEY: 'app-v1' } });
    const ask = (key: string, user: string, text: string) =>
      client(h!, key).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: text }], user });
    await ask('v1-key-one-0123456789', 'bob', '一');
    await ask('v1-key-one-0123456789', 'bob', '二');
    await ask('v1-key-two-0123456789', 'bob', '三');
    const conv = dify.requests.map((r) => (r.body as { conversation_id?: string }).conversation_id ?? '');
    expect(conv[0]).toBe('');
    expect(conv[1]).not.toBe('');
    expect(conv[2]).toBe('');
  });
});
